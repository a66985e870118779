"""Workarounds for Celery and kombu bugs that would lose workers; each says when to drop it.

Applied as a worker or beat starts (the signals module imports this one).
The fixes below patch kombu's Redis transport only: on RabbitMQ nothing calls them.
"""

import logging
from typing import Any

from kombu.transport import redis as kombu_redis

logger = logging.getLogger(__name__)

_original_restore_unacked = kombu_redis.QoS.restore_unacked


def _restore_unacked_or_leave_to_redelivery(self: Any, client: Any = None) -> Any:
    """Celery 5.7.0 closes a lost broker connection after collecting it, and kombu 5.7.0's
    Redis QoS then needs that collected connection to push unacked messages back: an
    AttributeError that kills the worker ("Unrecoverable error: ... 'hostname'").

    The messages are still in Redis's unacked set, and the visibility-timeout sweep
    puts them back, so the worker carries on and reconnects instead. Drop this once
    Consumer.on_connection_error_after_connected no longer closes a collected connection.
    """
    try:
        return _original_restore_unacked(self, client)
    except AttributeError:
        logger.warning(
            "Broker connection gone before %d unacknowledged message(s) could be requeued; "
            "Redis redelivers them after the visibility timeout",
            len(self._delivered),
        )
        return None


def apply() -> None:
    kombu_redis.QoS.restore_unacked = _restore_unacked_or_leave_to_redelivery  # type: ignore[method-assign]
