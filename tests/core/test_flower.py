"""Flower starts only behind basic auth, and then asks every visitor for the password."""

import subprocess
import sys

import httpx
import pytest

from tests.support.runner import Process, child_env, free_port, wait_until

PASSWORD = "a-long-flower-password"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, "FLOWER_BASIC_AUTH is not set"),
        ({"FLOWER_BASIC_AUTH": "admin:short"}, "at least 12 characters"),
        ({"FLOWER_BASIC_AUTH": f":{PASSWORD}"}, "user:password pairs"),
        (
            {"FLOWER_BASIC_AUTH": f"admin:{PASSWORD}", "FLOWER_UNAUTHENTICATED_API": "true"},
            "FLOWER_UNAUTHENTICATED_API must not be set",
        ),
    ],
)
def test_flower_refuses_to_start_without_proper_credentials(
    overrides: dict[str, str], reason: str
) -> None:
    inherited = {k: v for k, v in child_env().items() if not k.startswith("FLOWER_")}
    env = {**inherited, **overrides}

    result = subprocess.run(
        [sys.executable, "-m", "app.flower"], env=env, capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 1
    assert reason in result.stderr


def test_flower_asks_for_the_password() -> None:
    port = free_port()
    env = child_env({"FLOWER_BASIC_AUTH": f"admin:{PASSWORD}", "FLOWER_PORT": str(port)})
    flower = Process("flower", [sys.executable, "-m", "app.flower"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{url}/healthcheck"), 30, what="Flower to answer")

        anonymous = httpx.get(f"{url}/", timeout=5)
        wrong = httpx.get(f"{url}/", auth=("admin", "wrong-password"), timeout=5)
        right = httpx.get(f"{url}/", auth=("admin", PASSWORD), timeout=5)
        api = httpx.get(f"{url}/api/workers", timeout=5)
        metrics_anonymous = httpx.get(f"{url}/metrics", timeout=5)
        metrics_right = httpx.get(f"{url}/metrics", auth=("admin", PASSWORD), timeout=5)
    finally:
        flower.stop()

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert api.status_code == 401
    assert metrics_anonymous.status_code == 401
    assert metrics_right.status_code == 200 and "flower_" in metrics_right.text


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
