"""The FastAPI application: `uvicorn app.main:app`, or `create_app(settings)` in a test."""

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import tasks
from app.api.back_pressure import build_load_shedder, build_rate_limiter
from app.api.body_limit import BodySizeLimitMiddleware
from app.api.errors import install_error_handlers
from app.api.http_metrics import instrument
from app.api.request_id import RequestIdMiddleware
from app.api.router import api_router
from app.core import db
from app.core.config import Settings, get_settings
from app.core.logging import configure_logging
from durable_jobs import create_celery


def create_app(settings: Settings) -> FastAPI:
    configure_logging(settings)
    # The engine publishes the jobs this process enqueues; it loads no worker code. With
    # TRACING=true it also sets up the tracer provider, and FastAPI's own telemetry then
    # opens each request's server span, which the spans of its jobs join.
    celery_app = create_celery(settings, task_packages=[tasks.__name__], engine=db.engine)
    app = FastAPI(
        title="fastapi-durable-jobs",
        version="0.1.0",
        description="Users API whose background jobs are recorded, retried and never lost.",
    )
    app.state.settings = settings
    app.state.celery_app = celery_app
    app.state.rate_limiter = build_rate_limiter(settings)
    app.state.load_shedder = build_load_shedder(settings)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        timeout_seconds=settings.request_body_timeout_seconds,
    )
    if settings.backend_cors_origins:
        # Bearer tokens, not cookies: no credentials, so "*" stays a safe choice.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.backend_cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    # Added last, so it runs first: even a refused body gets an id.
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(api_router)
    # Outermost: every request is counted, a refused or shed one too.
    app.state.metrics_registry = instrument(app)
    return app


app = create_app(get_settings())
