"""`python -m bench.run [--quick]`: the durable job path against raw Celery, end to end.

Starts its own Celery workers, API servers, load generators and a private
redis-server against the local PostgreSQL (database `durable_jobs_bench`) and
Redis, runs every scenario several times with A and B alternating, writes
`bench/results/latest.json` and prints a Markdown table to stdout. Progress goes
to stderr. Every process it starts is stopped again, also on failure or Ctrl-C.
"""

import argparse
import dataclasses
import json
import logging
import os
import platform
import secrets
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.report import build_rows, markdown

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCENARIOS = ("throughput", "latency", "api", "broker_down", "backlog", "floor", "limits")
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/durable_jobs_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

logger = logging.getLogger("bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and 1 repetition (CI smoke, ~1 min)"
    )
    parser.add_argument("--reps", type=int, help="repetitions of each scenario (default 3)")
    parser.add_argument(
        "--only", help=f"comma-separated subset of: {', '.join(SCENARIOS)}", default=""
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    unknown = set(filter(None, args.only.split(","))) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def configure_environment(args: argparse.Namespace, run_id: str) -> None:
    """Settings for this process and every child; the application reads them at import."""
    os.environ.update(
        APP_ENV_FILE="",
        ENVIRONMENT="production",
        LOG_LEVEL="WARNING",
        DATABASE_URL=args.database_url,
        BROKER_URL=args.redis_url,
        BENCH_REDIS_URL=args.redis_url,
        BROKER_BROADCAST_PREFIX=f"bench-{run_id}",
        TASK_DEFAULT_QUEUE=f"bench-{run_id}",
        SEND_WELCOME_EMAIL="true",
        EMAIL_SEND_SECONDS="0",
        EMAIL_SIMULATED_FAILURES="0",
        ADMIN_TOKEN="",
        # The load generators send everything from one address; back-pressure would refuse it.
        RATE_LIMIT_PER_SECOND="0",
        SHED_QUEUE_DEPTH="0",
        PYTHONUNBUFFERED="1",
    )


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_id = secrets.token_hex(4)
    configure_environment(args, run_id)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    logger.setLevel(logging.INFO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)

    # Imported only now: the application reads its settings at import time.
    from bench.procs import Children
    from bench.scenarios import Bench, Options

    if args.quick:
        options = Options(
            reps=args.reps or 1,
            jobs=200,
            latency_jobs=50,
            api_rate=40,
            api_seconds=3,
            down_seconds=3,
            backlog_jobs=1000,
            backlog_rate=20,
            backlog_seconds=3,
            warmup=0.5,
            floor_messages=2000,
        )
    else:
        options = Options(
            reps=args.reps or 3,
            jobs=5000,
            latency_jobs=300,
            api_rate=40,
            api_seconds=10,
            down_seconds=8,
            backlog_jobs=10_000,
            backlog_rate=20,
            backlog_seconds=8,
            warmup=1.0,
            floor_messages=10_000,
        )
    selected = set(filter(None, args.only.split(","))) or set(SCENARIOS)
    children = Children()
    bench = Bench(options, children, run_id)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    succeeded = False
    logger.info("bench run %s (queue %s), logs in %s", run_id, bench.queue, children.log_dir)
    try:
        with bench.database():
            if selected & {"throughput", "latency", "limits"}:
                bench.start_worker()
                if "throughput" in selected:
                    bench.throughput()
                if "latency" in selected:
                    bench.latency()
                if "limits" in selected:
                    bench.limits()
                bench.stop_worker()
            if selected & {"api", "backlog"}:
                api_on_child, api_on = bench.start_api(
                    "api-with-enqueue", send_welcome_email="true"
                )
                if "api" in selected:
                    api_off_child, api_off = bench.start_api(
                        "api-without-enqueue", send_welcome_email="false"
                    )
                    bench.api(api_on, api_off)
                    children.stop(api_off_child)
                if "backlog" in selected:
                    bench.backlog(api_on)
                children.stop(api_on_child)
            if "broker_down" in selected:
                bench.broker_down()
            if "floor" in selected:
                bench.floor()
            bench.reset()
        succeeded = True
    except KeyboardInterrupt:
        logger.error("interrupted; stopping every process this run started")
    except Exception:
        logger.exception("the bench failed; process logs are kept in %s", children.log_dir)
    finally:
        children.stop_all()
        try:
            bench.cleanup_redis()
        except Exception:
            logger.exception("could not remove this run's Redis keys")
        if succeeded:
            children.remove_logs()
    if not succeeded:
        return 1
    wall = time.perf_counter() - started
    labels = {
        "throughput": f"{options.jobs:,} no-op jobs, 1 producer, worker -c {options.concurrency}",
        "latency": f"{options.latency_jobs} sequential jobs, idle worker",
        "api": f"POST /users, {options.api_rate:g} req/s open loop, {options.api_seconds:g} s",
        "broker_down": f"as 3 on a private redis-server, stopped for A, {options.down_seconds:g} s",
        "backlog": (
            f"up to {options.backlog_jobs:,} durable jobs draining vs worker stopped; "
            f"health + users at {options.backlog_rate:g} req/s each, {options.backlog_seconds:g} s"
        ),
        "floor": f"{options.floor_messages:,} messages of 1 kB, one producer, one consumer process",
        "limits": (
            f"{options.jobs:,} durable no-op jobs as in 1, a task with a limit it never reaches "
            "(concurrency=100, rate=1000/s) vs none"
        ),
    }
    rows = build_rows(bench.results)
    table = markdown(rows, labels)
    report = {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "wall_seconds": round(wall, 1),
        "mode": "quick" if args.quick else "full",
        "options": dataclasses.asdict(options),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Other work on the machine skews every number; compare with cpus.
            "loadavg_1_5_15_at_start": load_at_start,
            "loadavg_1_5_15_at_end": os.getloadavg(),
        },
        "notes": "A vs B per row; values are the median (range) over repetitions.",
        "results": bench.results,
        "rows": [row.as_dict() for row in rows],
        "table": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write(
        f"\n## Benchmark ({report['mode']}, {options.reps} repetition(s), "
        f"median (range), wall {wall:.0f} s, load average at start "
        f"{load_at_start[0]:.1f} on {os.cpu_count()} CPUs)\n\n{table}\nWrote {args.output}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
