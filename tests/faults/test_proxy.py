"""The fault proxy itself: each mode does to a connection what its name says."""

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy, Mode


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    running = FaultProxy(server.server_address[1]).start()
    yield running
    running.stop()
    server.shutdown()
    server.server_close()


def round_trip(proxy: FaultProxy, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as sock:
        sock.sendall(b"ping")
        return sock.recv(16)


def test_pass_forwards_both_ways(proxy: FaultProxy) -> None:
    assert round_trip(proxy) == b"ping"


def test_refuse_closes_new_connections(proxy: FaultProxy) -> None:
    proxy.set_mode(Mode.REFUSE)
    with pytest.raises(ConnectionResetError):
        round_trip(proxy)


def test_blackhole_accepts_and_never_answers(proxy: FaultProxy) -> None:
    proxy.set_mode(Mode.BLACKHOLE)
    with pytest.raises(TimeoutError):
        round_trip(proxy, timeout=0.5)


def test_delay_holds_each_chunk(proxy: FaultProxy) -> None:
    proxy.set_mode(Mode.DELAY, delay_seconds=0.3)
    started = time.monotonic()
    assert round_trip(proxy) == b"ping"
    assert time.monotonic() - started >= 0.6  # once each way


def test_reset_breaks_live_connections(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as sock:
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
        proxy.set_mode(Mode.RESET)
        time.sleep(0.1)
        with pytest.raises(ConnectionResetError):
            sock.sendall(b"again")
            sock.recv(16)
