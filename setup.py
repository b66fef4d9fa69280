"""The compiled parts: fast paths for delimited text (lepton/data/_numcsv.c:
plain numeric CSV chunks; lepton/data/_linecuts.c: the first-field cut
rule; lepton/data/_linehash.c: per-line hashes). Optional: where they
cannot be built, pyarrow and numpy parse and cut the same, and edited
chunks are parsed whole (no line hashes)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("lepton.data._numcsv", ["lepton/data/_numcsv.c"], optional=True),
        Extension("lepton.data._linecuts", ["lepton/data/_linecuts.c"], optional=True),
        Extension("lepton.data._linehash", ["lepton/data/_linehash.c"], optional=True),
    ]
)
