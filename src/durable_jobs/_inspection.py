"""Questions to the broker about its health and the workers it serves, each with a
deadline, so a dead or frozen broker costs a bounded wait and never a hang."""

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from durable_jobs._runtime import current

# A few threads only: calls stuck on a frozen broker must not pile up without bound.
_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="broker-inspect")


class BrokerUnavailable(Exception):
    pass


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    active_tasks: int
    processed: int
    concurrency: int | None


def ping_broker(deadline: float) -> None:
    _wait(_executor.submit(_connect_once), deadline)


def connected_workers(deadline: float) -> list[WorkerInfo]:
    """The workers that answered within the deadline, with what each is doing."""
    reply_timeout = max(0.1, deadline * 0.6)
    inspector = current().celery.control.inspect(timeout=reply_timeout)
    stats_call = _executor.submit(inspector.stats)
    active_call = _executor.submit(inspector.active)
    stats: dict[str, Any] = _wait(stats_call, deadline) or {}
    active: dict[str, list[Any]] = _wait(active_call, deadline) or {}
    return [
        WorkerInfo(
            name=name,
            active_tasks=len(active.get(name, [])),
            processed=sum(stat.get("total", {}).values()),
            concurrency=stat.get("pool", {}).get("max-concurrency"),
        )
        for name, stat in sorted(stats.items())
    ]


def _connect_once() -> None:
    with current().celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def _wait(future: "Future[Any]", deadline: float) -> Any:
    try:
        return future.result(timeout=deadline)
    except FutureTimeout as exc:
        raise BrokerUnavailable(f"the broker did not answer within {deadline:.1f}s") from exc
    except Exception as exc:
        raise BrokerUnavailable(f"the broker is unreachable: {exc}") from exc
