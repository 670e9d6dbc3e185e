"""Celery workers: they train runs whose ids arrive through the broker; the database holds the truth."""
