"""The compiled parts: fast paths for delimited text (lepton/data/_numcsv.c:
plain numeric CSV chunks; lepton/data/_linecuts.c: the first-field cut
rule). Optional: where they cannot be built, pyarrow and numpy do the same."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("lepton.data._numcsv", ["lepton/data/_numcsv.c"], optional=True),
        Extension("lepton.data._linecuts", ["lepton/data/_linecuts.c"], optional=True),
    ]
)
