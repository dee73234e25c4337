"""Deployment assets: compose files, the Grafana dashboard, the Prefect server set-up (setup.py)."""
