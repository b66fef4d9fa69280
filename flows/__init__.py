"""Prefect flows: retrain (the main job) and replay."""
