"""`python -m app.core.migrate`: create the database if it is missing, then migrate it.

Run before the API and the worker start (compose runs it as a one-shot service).
"""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import get_settings
from app.core.logging import configure_logging

logger = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def ensure_database_exists(database_url: str) -> None:
    url = make_url(database_url)
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{url.database}"'))
                logger.info("Created database %s", url.database)
    finally:
        server.dispose()


def upgrade_to_head() -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["configure_logger"] = False
    # heads: the service's history and the engine's branch.
    command.upgrade(config, "heads")


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    ensure_database_exists(settings.database_url)
    upgrade_to_head()
    logger.info("Database is at the latest migration")


if __name__ == "__main__":
    main()
