"""Worker-only code: loaded by `celery worker` and `celery beat`, never by an API."""
