"""Celery workers, an entry point: workers.tasks holds the task bodies, each a call into skipweb.services
(training, landscapes, recovery) with one id; the database holds the truth. Start them with
``skipweb worker`` (skipweb.services.broker's app loads this package by name)."""
