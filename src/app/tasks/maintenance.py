"""Housekeeping tasks run by Celery beat."""

import logging

from app.core.db import transaction
from app.jobs import ledger
from app.jobs.relay import relay_pending_jobs, requeue_abandoned_jobs
from app.tasks.catalog import PRUNE_FINISHED_JOBS, REAP_ABANDONED_JOBS
from app.worker import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(name=PRUNE_FINISHED_JOBS.name)
def prune_finished_jobs() -> int:
    with transaction() as session:
        pruned = ledger.prune_finished(session)
    logger.info("Pruned %d finished jobs past their retention", pruned)
    return pruned


@celery_app.task(name=REAP_ABANDONED_JOBS.name)
def reap_abandoned_jobs() -> dict[str, int]:
    """The relay's sweep, on beat's schedule: abandoned jobs still come back, and get
    published, while the relay is down. Beside a running relay it finds nothing."""
    requeued = requeue_abandoned_jobs()
    published = 0
    while (batch := relay_pending_jobs(min_age_seconds=0)) > 0:
        published += batch
    return {"requeued": requeued, "published": published}
