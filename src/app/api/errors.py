"""Domain errors mapped to HTTP answers, so none of them surfaces as a 500."""

import json
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from app.services.idempotency import IdempotencyKeyReused
from app.services.users import EmailAlreadyRegistered

STATUS_BY_ERROR: dict[type[Exception], int] = {
    EmailAlreadyRegistered: status.HTTP_409_CONFLICT,
    IdempotencyKeyReused: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a validation error may echo input that is not
    encodable as UTF-8 (a lone surrogate), which must still answer 422, not 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def install_error_handlers(app: FastAPI) -> None:
    for error, code in STATUS_BY_ERROR.items():
        app.add_exception_handler(error, _answer_with(code))
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _invalid_request)


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return AsciiJSONResponse(
        {"detail": jsonable_encoder(exc.errors())},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _answer_with(code: int):  # type: ignore[no-untyped-def]
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "The database is unavailable; try again shortly"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )
