"""Prefect flows: composition of the tasks into the policy's phases."""
