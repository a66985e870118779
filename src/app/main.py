"""The FastAPI application: `uvicorn app.main:app`."""

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.body_limit import BodySizeLimitMiddleware
from app.api.errors import install_error_handlers
from app.api.request_id import RequestIdMiddleware
from app.api.router import api_router
from app.core.config import Settings, settings
from app.core.logging import configure_logging


def create_app(app_settings: Settings = settings) -> FastAPI:
    configure_logging()
    app = FastAPI(
        title="fastapi-durable-jobs",
        version="0.1.0",
        description="Users API whose background jobs are recorded, retried and never lost.",
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=app_settings.max_request_body_bytes,
        timeout_seconds=app_settings.request_body_timeout_seconds,
    )
    if app_settings.backend_cors_origins:
        # Bearer tokens, not cookies: no credentials, so "*" stays a safe choice.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=app_settings.backend_cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    # Added last, so it runs first: even a refused body gets an id.
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(api_router)
    return app


app = create_app()
