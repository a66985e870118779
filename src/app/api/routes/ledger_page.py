"""The ledger page: a static HTML page whose script reads /api/v1/jobs with the admin token.

The files hold no ledger data, so they need no token; the data comes only from the JSON
API, which checks it. Like that API, the page answers 404 while ADMIN_TOKEN is unset.
"""

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from app.api.deps import configured_admin_token

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# Our own script, style and API only: no inline code, no other origin, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(configured_admin_token)],
    include_in_schema=False,
)


def static_file(name: str, media_type: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/jobs")
def ledger_page() -> FileResponse:
    return static_file("ledger.html", "text/html; charset=utf-8")


@router.get("/static/ledger.js")
def ledger_script() -> FileResponse:
    return static_file("ledger.js", "text/javascript; charset=utf-8")


@router.get("/static/ledger.css")
def ledger_style() -> FileResponse:
    return static_file("ledger.css", "text/css; charset=utf-8")
