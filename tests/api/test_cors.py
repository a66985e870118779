"""Cross-origin calls: none by default, only the configured origins otherwise."""

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def app_client(**values: object) -> TestClient:
    return TestClient(create_app(Settings(_env_file=None, **values)))  # type: ignore[call-arg]


def test_no_origin_is_allowed_by_default(client: TestClient) -> None:
    preflight = client.options("/api/v1/users", headers={"Origin": ALLOWED, **PREFLIGHT})
    read = client.get("/api/v1/health", headers={"Origin": ALLOWED})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in read.headers


def test_a_configured_origin_may_call_the_api() -> None:
    with app_client(backend_cors_origins=f"{ALLOWED}/, http://localhost:5173") as client:
        preflight = client.options("/api/v1/users", headers={"Origin": ALLOWED, **PREFLIGHT})
        read = client.get("/api/v1/health", headers={"Origin": "http://localhost:5173"})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert read.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "X-Request-ID" in read.headers["access-control-expose-headers"]


def test_another_origin_is_refused() -> None:
    with app_client(backend_cors_origins=ALLOWED) as client:
        preflight = client.options(
            "/api/v1/users", headers={"Origin": "https://evil.example.com", **PREFLIGHT}
        )
        read = client.get("/api/v1/health", headers={"Origin": "https://evil.example.com"})

    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in read.headers
