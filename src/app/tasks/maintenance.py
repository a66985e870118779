"""Housekeeping tasks run by Celery beat."""

import logging

from app.core.db import transaction
from app.jobs import ledger
from app.tasks.catalog import PRUNE_FINISHED_JOBS
from app.worker import celery_app

logger = logging.getLogger(__name__)


@celery_app.task(name=PRUNE_FINISHED_JOBS.name)
def prune_finished_jobs() -> int:
    with transaction() as session:
        pruned = ledger.prune_finished(session)
    logger.info("Pruned %d finished jobs past their retention", pruned)
    return pruned
