"""/admin/jobs: the ledger page's files, their headers, and the page's absence without a token.

What the page does in a browser is tested in tests/browser/test_ledger_page.py.
"""

import pytest
from fastapi.testclient import TestClient

from tests.support.environment import ADMIN_HEADERS
from tests.support.settings import settings

PAGE_FILES = ("/admin/jobs", "/admin/static/ledger.js", "/admin/static/ledger.css")


def test_the_page_is_served_without_a_token_and_holds_no_ledger_data(client: TestClient) -> None:
    client.post("/api/v1/users", json={"email": "page@example.com", "full_name": "Page"})

    response = client.get("/admin/jobs")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Job ledger</title>" in response.text
    assert "users.send_welcome_email" not in response.text


def test_every_file_carries_a_strict_content_security_policy(client: TestClient) -> None:
    for path in PAGE_FILES:
        response = client.get(path)

        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script_and_no_other_origin(client: TestClient) -> None:
    html = client.get("/admin/jobs").text

    assert '<script src="/admin/static/ledger.js" defer></script>' in html
    assert "<script>" not in html
    assert "http://" not in html and "https://" not in html


def test_the_script_never_writes_html(client: TestClient) -> None:
    script = client.get("/admin/static/ledger.js").text

    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "textContent" in script


def test_without_a_configured_token_the_page_is_off(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "admin_token", None)

    for path in PAGE_FILES:
        response = client.get(path, headers=ADMIN_HEADERS)

        assert response.status_code == 404, path


def test_the_page_is_not_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert not [path for path in paths if path.startswith("/admin")]
