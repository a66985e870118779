"""Oversized and slow bodies, against a real uvicorn process as clients meet it."""

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.support.launchers import start_api
from tests.support.runner import Process, child_env

BODY_TIMEOUT_SECONDS = 2.0
TWO_MB = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    api: Process
    api, base_url = start_api(
        child_env({"REQUEST_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS)})
    )
    yield base_url
    api.stop()


def test_every_oversized_body_gets_its_413(api_url: str) -> None:
    body = json.dumps({"email": "big@example.com", "full_name": "x" * TWO_MB}).encode()
    statuses = []
    for _ in range(20):
        request = urllib.request.Request(
            f"{api_url}/api/v1/users",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as answer:  # a URLError (a reset) fails the test
            statuses.append((answer.code, json.loads(answer.read())["detail"]))

    assert statuses == [(413, "Request body exceeds 65536 bytes")] * 20


def test_a_client_that_waits_for_100_continue_is_answered_at_once(api_url: str) -> None:
    host, port = api_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/api/v1/users")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(TWO_MB))
    connection.putheader("Expect", "100-continue")
    connection.endheaders()  # and no body: the server must answer without it

    response = connection.getresponse()

    assert response.status == 413
    connection.close()


def test_a_body_sent_slowly_is_cut_off_with_408(api_url: str) -> None:
    started = time.monotonic()
    with closing(_open_slow_client(api_url)) as slow:
        answer = _read_until_closed(slow)
    waited = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 2 seconds" in answer
    assert BODY_TIMEOUT_SECONDS - 0.5 < waited < BODY_TIMEOUT_SECONDS + 3


def test_slow_bodies_hold_no_thread_of_the_routes(api_url: str) -> None:
    # More slow clients than the thread pool that runs the (sync) routes has threads.
    slow_clients = [_open_slow_client(api_url) for _ in range(60)]
    try:
        started = time.monotonic()
        payload = {"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "full_name": "Quick"}
        request = urllib.request.Request(
            f"{api_url}/api/v1/users",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
        answered_in = time.monotonic() - started
        answers = [client.recv(64) for client in slow_clients]
    finally:
        for client in slow_clients:
            client.close()

    assert status == 201
    assert answered_in < BODY_TIMEOUT_SECONDS
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers)


def _open_slow_client(api_url: str) -> socket.socket:
    """Headers announcing 1000 bytes of body, then 10 of them, then nothing."""
    host, port = api_url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_SECONDS + 5)
    client.sendall(
        b"POST /api/v1/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"email": '
    )
    return client


def _read_until_closed(client: socket.socket) -> bytes:
    """The whole answer: the server closes the connection after it."""
    received = b""
    while chunk := client.recv(4096):
        received += chunk
    return received
