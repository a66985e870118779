"""The FastAPI application: `uvicorn app.main:app`."""

from fastapi import FastAPI

from app.api.body_limit import BodySizeLimitMiddleware
from app.api.errors import install_error_handlers
from app.api.request_id import RequestIdMiddleware
from app.api.router import api_router
from app.core.config import settings
from app.core.logging import configure_logging


def create_app() -> FastAPI:
    configure_logging()
    app = FastAPI(
        title="fastapi-durable-jobs",
        version="0.1.0",
        description="Users API whose background jobs are recorded, retried and never lost.",
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    # Added last, so it runs first: even a refused body gets an id.
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(api_router)
    return app


app = create_app()
