"""A Jepsen total-queue style checker: what clients were told against what workers did.

Every request is recorded client-side as ok (accepted, with the key of its job),
fail (a definite refusal: nothing was enqueued) or info (timeout, connection error:
unknown). After the fault the stack is restored and drained; then

- lost       = ok - done                      (must be 0)
- unexpected = done - (ok | info)             (a job nobody was told about)
- recovered  = info & done                    (unknown outcomes that did run)
- dup_exec   = executions beyond one per job  (reported; bounded by the kills)
- dup_effect = effects beyond one per job     (must be 0; a UNIQUE constraint)
"""

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Engine, bindparam, text

from durable_jobs import JobState
from tests.support.runner import wait_until


class Outcome(StrEnum):
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


@dataclass(frozen=True)
class Operation:
    key: str
    outcome: Outcome
    started: float
    seconds: float


@dataclass
class History:
    """Client-side record of every request, safe to append to from many threads."""

    operations: list[Operation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, outcome: Outcome, started: float, seconds: float) -> None:
        with self._lock:
            self.operations.append(Operation(key, outcome, started, seconds))

    def keys(self, outcome: Outcome) -> set[str]:
        return {op.key for op in self.operations if op.outcome is outcome}

    def latencies(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [op.seconds for op in self.operations if since <= op.started <= until]


@dataclass(frozen=True)
class Verdict:
    jobs: int
    lost: set[str]
    unexpected: set[str]
    recovered: set[str]
    dup_exec: int
    dup_effect: int
    effect_repeats: int
    executions: int

    def assert_safe(self) -> None:
        assert not self.lost, f"lost {len(self.lost)} jobs: {sorted(self.lost)[:10]}"
        assert self.dup_effect == 0, f"{self.dup_effect} duplicate effects"


def check(engine: Engine, history: History) -> Verdict:
    with engine.connect() as connection:
        done = set(connection.scalars(text("SELECT key FROM effects")))
        effects, distinct_jobs, repeats = connection.execute(
            text("SELECT count(*), count(DISTINCT job_id), coalesce(sum(repeats), 0) FROM effects")
        ).one()
        executions, executed_jobs = connection.execute(
            text("SELECT count(*), count(DISTINCT job_id) FROM executions")
        ).one()
    ok, info = history.keys(Outcome.OK), history.keys(Outcome.INFO)
    return Verdict(
        jobs=len(ok),
        lost=ok - done,
        unexpected=done - (ok | info),
        recovered=info & done,
        dup_exec=executions - executed_jobs,
        dup_effect=effects - distinct_jobs,
        effect_repeats=int(repeats),
        executions=executions,
    )


# Jobs still on their way: in the outbox, or queued, started or retrying.
BUSY_STATES = [JobState.QUEUED, JobState.STARTED, JobState.RETRYING]
_BUSY = text("SELECT count(*) FROM jobs WHERE published_at IS NULL OR state IN :busy").bindparams(
    bindparam("busy", expanding=True)
)


def drain(engine: Engine, timeout: float) -> float:
    """Wait until the outbox is empty and no job is queued, started or retrying;
    return how long that took (the cap raises)."""
    started = time.monotonic()

    def drained() -> bool:
        try:
            with engine.connect() as connection:
                busy = connection.scalar(_BUSY, {"busy": BUSY_STATES})
        except Exception:  # the database may still be coming back
            return False
        return bool(busy == 0)

    wait_until(drained, timeout, interval=0.2, what="the stack to drain")
    return time.monotonic() - started
