"""`python -m bench.scrape`: the time of a /metrics scrape at 1,000,000 ledger rows.

Creates (and migrates) the scratch database `durable_jobs_scrape_bench`, fills its job
ledger once with `--rows` jobs (3% of them unfinished, spread over the whole table: the
worst layout for the scrape), then times GET /metrics of the service in process, and
each part of it alone. `--keep` leaves the database for the next run; by default it is
dropped at the end. Prints one Markdown table; asserts nothing.
"""

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "durable_jobs_scrape_bench"

# Every hundredth job is queued, retrying or started; every 300th never published.
FILL_LEDGER = """
INSERT INTO jobs (id, task_name, kwargs, queue, state, attempts, max_attempts, worker_losses,
                  retries, created_at, published_at, started_at, finished_at)
SELECT gen_random_uuid(), 'bench.task_' || (i % 8), '{}'::jsonb, 'default',
       CASE WHEN i % 100 = 0 THEN 'queued' WHEN i % 100 = 1 THEN 'retrying'
            WHEN i % 100 = 2 THEN 'started' WHEN i % 100 < 10 THEN 'failed'
            ELSE 'succeeded' END,
       1, 4, 0, 0, c, CASE WHEN i % 300 = 0 THEN NULL ELSE c END,
       c + interval '1 second', c + interval '2 seconds'
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT now() - make_interval(secs => i / 10.0) AS c) AS t
"""
UNFINISHED_SHARE = 3 / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--server", default=os.environ.get("BENCH_DATABASE_SERVER", DEFAULT_SERVER))
    parser.add_argument(
        "--broker-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    os.environ.update(
        APP_ENV_FILE="",
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        DATABASE_URL=f"{args.server}/{DATABASE}",
        BROKER_URL=args.broker_url,
        TASK_DEFAULT_QUEUE="scrape-bench",
        BROKER_BROADCAST_PREFIX="scrape-bench",
        ADMIN_TOKEN="scrape-bench",
    )
    # Imported only now: the application reads its settings at import time.
    from fastapi.testclient import TestClient

    from app.core.db import engine, transaction
    from app.core.migrate import ensure_database_exists, upgrade_to_head
    from app.main import app
    from durable_jobs import JobsCollector
    from durable_jobs._metrics import _queue_depths

    logging.basicConfig(level=logging.WARNING)
    ensure_database_exists(os.environ["DATABASE_URL"])
    upgrade_to_head()
    try:
        with transaction() as session:
            present = session.scalar(text("SELECT count(*) FROM jobs"))
        if present != args.rows:
            started = time.monotonic()
            with transaction() as session:
                session.execute(text("TRUNCATE jobs"))
                fill_ledger(session, args.rows)
            # As autovacuum leaves a table: visibility map set, statistics fresh.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE jobs"))
            report(f"filled {args.rows:,} rows in {time.monotonic() - started:.1f}s")
        collector = JobsCollector()
        with TestClient(app) as client:
            parts: dict[str, Callable[[], object]] = {
                "GET /metrics (whole answer)": lambda: client.get("/metrics"),
                "ledger queries": lambda: list(collector._ledger()),
                "broker queue depths": _queue_depths,
            }
            report(f"\n| {args.rows:,} ledger rows, {args.scrapes} runs | median ms | max ms |")
            report("|---|---|---|")
            for name, run in parts.items():
                run()
                seconds = []
                for _ in range(args.scrapes):
                    started = time.perf_counter()
                    run()
                    seconds.append(time.perf_counter() - started)
                median, worst = statistics.median(seconds) * 1000, max(seconds) * 1000
                report(f"| {name} | {median:.1f} | {worst:.1f} |")
    finally:
        engine.dispose()
        if not args.keep:
            server = create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT")
            with server.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
            server.dispose()


def fill_ledger(session: Session, rows: int) -> None:
    """`rows` jobs, 3% unfinished, in one statement."""
    session.execute(text(FILL_LEDGER), {"rows": rows})


def report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
