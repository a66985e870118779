"""Typed dependencies shared by the routes."""

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import transaction


def get_session() -> Iterator[Session]:
    """The request's transaction: committed before the response is sent."""
    with transaction() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_app_settings(request: Request) -> Settings:
    """The settings this app was built with (`create_app(settings)`)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]

_bearer = HTTPBearer(auto_error=False, description="The ADMIN_TOKEN setting")


def configured_admin_token(settings: SettingsDep) -> SecretStr:
    """The admin API and the ledger page exist only while ADMIN_TOKEN is set."""
    if settings.admin_token is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "The jobs API is disabled: set ADMIN_TOKEN to enable it"
        )
    return settings.admin_token


def require_admin(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[SecretStr, Depends(configured_admin_token)],
) -> None:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Invalid bearer token")


AdminDep = Depends(require_admin)
