"""Housekeeping tasks, on the engine's own periodic schedules (every relay defines them)."""

import logging

from durable_jobs import _ledger as ledger
from durable_jobs._declare import task
from durable_jobs._relay import relay_pending_jobs, requeue_abandoned_jobs
from durable_jobs._runtime import transaction

logger = logging.getLogger(__name__)


@task("jobs.prune_finished")
def prune_finished_jobs() -> int:
    with transaction() as session:
        pruned = ledger.prune_finished(session)
    logger.info("Pruned %d finished jobs past their retention", pruned)
    return pruned


@task("jobs.reap_abandoned")
def reap_abandoned_jobs() -> dict[str, int]:
    """The relay's sweep, run from a worker on a periodic schedule: a backstop beside the
    relay's own. Beside a running relay it finds nothing."""
    requeued = requeue_abandoned_jobs()
    published = 0
    while (batch := relay_pending_jobs(min_age_seconds=0)) > 0:
        published += batch
    return {"requeued": requeued, "published": published}
