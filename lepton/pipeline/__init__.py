"""The retraining pipeline as plain functions over artifact ids:
snapshot-data -> version-components -> train -> evaluate -> select -> deploy.
The Prefect layer (tasks/, flows/) wraps each step; nothing here imports it."""
