"""Prefect tasks: one per pipeline step, each a thin wrapper that loads by id,
calls one lepton function, returns ids and publishes a Prefect artifact."""
