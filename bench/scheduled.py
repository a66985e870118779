"""`python -m bench.scheduled`: how late the relay publishes scheduled jobs.

Commits JOBS scheduled jobs (10,000 by default) whose times are spread evenly over
SPREAD seconds, starting LEAD seconds on; a relay (`python -m app.relay`, production
settings: RELAY_INTERVAL_SECONDS 1) publishes each when it falls due, and a consumer in
this process takes every message off the queue as it arrives. Lateness is a message's
arrival at the consumer minus its job's run_at: the relay's wake-up, its pass and the
broker's delivery. Prints p50, p99 and max; asserts nothing. Uses the database
`durable_jobs_bench_scheduled` (created and migrated if missing, emptied first) and a
queue of its own on the local Redis (`--broker-url amqp://...` for RabbitMQ).
"""

import argparse
import json
import logging
import os
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger("bench.scheduled")

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/durable_jobs_bench_scheduled"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=120.0, help="seconds the times span")
    parser.add_argument("--lead", type=float, default=20.0, help="seconds to the first time")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    return parser.parse_args(argv)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = secrets.token_hex(4)
    os.environ.update(
        APP_ENV_FILE="",
        ENVIRONMENT="production",
        LOG_LEVEL="WARNING",
        ADMIN_TOKEN="",
        DATABASE_URL=args.database_url,
        BROKER_URL=args.broker_url,
        BROKER_BROADCAST_PREFIX=f"bench-{run_id}",
        TASK_DEFAULT_QUEUE=f"bench-scheduled-{run_id}",
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    # Imported only now: the application reads its settings at import time.
    from sqlalchemy import text

    from app.core.db import engine, transaction
    from app.core.migrate import ensure_database_exists, upgrade_to_head
    from bench.procs import Children
    from bench.tasks import celery_app, noop

    ensure_database_exists(args.database_url)
    upgrade_to_head()
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE jobs, job_unique_keys"))

    first = datetime.now(UTC) + timedelta(seconds=args.lead)
    step = args.spread / max(1, args.jobs - 1)
    run_at: dict[str, datetime] = {}
    with transaction() as session:
        for index in range(args.jobs):
            moment = first + timedelta(seconds=index * step)
            run_at[str(noop.options(run_at=moment).enqueue(session).id)] = moment
    committed = datetime.now(UTC)
    logger.info("%d jobs scheduled; %.1fs to the first", args.jobs, (first - committed).seconds)
    assert committed < first, "the jobs took longer than --lead to commit; raise it"

    children = Children()
    arrivals: dict[str, float] = {}
    try:
        relay = children.start("relay", [sys.executable, "-m", "app.relay"], dict(os.environ))
        queue = celery_app.amqp.queues[os.environ["TASK_DEFAULT_QUEUE"]]

        def arrived(_body: Any, message: Any) -> None:
            job_id = message.headers["id"]
            if job_id in run_at:  # not the relay's own periodic jobs (the reaper)
                arrivals[job_id] = time.time()
            message.ack()

        with celery_app.connection_for_read() as connection:
            consumer = connection.Consumer([queue], callbacks=[arrived], accept=["json"])
            consumer.qos(prefetch_count=500)
            with consumer:
                deadline = time.monotonic() + args.lead + args.spread + 60
                while len(arrivals) < args.jobs and time.monotonic() < deadline:
                    try:
                        connection.drain_events(timeout=1)
                    except TimeoutError:
                        pass
                    if not relay.alive():
                        raise RuntimeError(f"the relay exited:\n{relay.log_tail()}")
    finally:
        children.stop_all()

    lateness = sorted(arrivals[job_id] - run_at[job_id].timestamp() for job_id in arrivals)
    result = {
        "jobs": args.jobs,
        "received": len(arrivals),
        "spread_seconds": args.spread,
        "broker": args.broker_url.split(":", 1)[0],
        "early": sum(1 for seconds in lateness if seconds < 0),
        "p50_ms": round(percentile(lateness, 0.5) * 1000),
        "p99_ms": round(percentile(lateness, 0.99) * 1000),
        "max_ms": round(lateness[-1] * 1000),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if len(arrivals) == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
