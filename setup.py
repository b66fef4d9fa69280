"""The one compiled part: lepton/data/_numcsv.c, a fast path for plain numeric
CSV chunks. Optional: where it cannot be built, pyarrow parses everything."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("lepton.data._numcsv", ["lepton/data/_numcsv.c"], optional=True)])
