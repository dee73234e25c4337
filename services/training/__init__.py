"""The reference training service: FastAPI API, Celery worker on Redis running the workload.

``uvicorn services.training.api:app`` serves the API; ``celery -A services.training.worker
worker`` runs jobs. Both read their settings from the environment (``settings.py``).
"""
