"""The outbox relay: `python -m app.relay`. Several may run side by side."""

from app import tasks
from app.core import db
from app.core.config import get_settings
from app.core.logging import configure_logging
from durable_jobs import create_celery, run_relay


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    create_celery(settings, task_packages=[tasks.__name__], engine=db.engine)
    run_relay()


if __name__ == "__main__":
    main()
