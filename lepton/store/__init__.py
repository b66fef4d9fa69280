"""Storage: URL -> filesystem (fs.py), content-addressed objects (objects.py)."""

from lepton.store.fs import Location, open_location
from lepton.store.objects import ObjectStore

__all__ = ["Location", "ObjectStore", "open_location"]
