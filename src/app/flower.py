"""Start Flower, Celery's dashboard, only behind basic auth.

Run it with `python -m app.flower`. Flower's own options come from FLOWER_*
variables; this refuses to start unless FLOWER_BASIC_AUTH holds `user:password`
pairs (comma-separated), because an open Flower can revoke and inspect any task.
Flower's /metrics answers anyone by default; here it asks for the password too.
"""

import os
import sys
from typing import Any

from tornado.web import HTTPError

MIN_PASSWORD_LENGTH = 12
CELERY_APP = "app.worker.celery_app"


def credential_problem(basic_auth: str | None, unauthenticated_api: str | None) -> str | None:
    """Why these settings must not start Flower, or None when they may."""
    if unauthenticated_api and unauthenticated_api.lower() not in ("0", "false", "no", ""):
        return "FLOWER_UNAUTHENTICATED_API must not be set: it opens Flower's API to anyone"
    if not basic_auth:
        return "FLOWER_BASIC_AUTH is not set: give it user:password (make up writes one to .env)"
    for pair in basic_auth.split(","):
        user, _, password = pair.partition(":")
        if not user or len(password) < MIN_PASSWORD_LENGTH:
            return (
                "FLOWER_BASIC_AUTH must hold user:password pairs with passwords of at least "
                f"{MIN_PASSWORD_LENGTH} characters"
            )
    return None


def main() -> None:
    problem = credential_problem(
        os.environ.get("FLOWER_BASIC_AUTH"), os.environ.get("FLOWER_UNAUTHENTICATED_API")
    )
    if problem:
        sys.exit(f"Flower not started: {problem}")
    _protect_metrics()
    from celery.bin.celery import main as celery_main

    from app.core.config import get_settings
    from app.core.logging import configure_logging

    # Before Flower's options are parsed: tornado then adds no text handler of its own.
    configure_logging(get_settings())

    sys.argv = ["celery", "-A", CELERY_APP, "flower", *sys.argv[1:]]
    celery_main()


def _protect_metrics() -> None:
    """Put Flower's /metrics behind the same basic auth as its pages."""
    from flower.views.monitor import Metrics

    unprotected = Metrics.get

    async def get(self: Any) -> None:
        # current_user raises 401 on missing or wrong credentials; None is refused too.
        if not self.current_user:
            raise HTTPError(401)
        await unprotected(self)

    Metrics.get = get


if __name__ == "__main__":
    main()
