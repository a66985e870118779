from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


DATABASE_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "The database is unavailable; retry later"}
}
