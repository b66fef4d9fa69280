"""The `lepton` command line (an edge: it may import anything in lepton/)."""
