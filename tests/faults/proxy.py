"""A TCP fault proxy between the application and one dependency, switchable at run time.

Modes: pass (forward), refuse (close new connections at once), blackhole (accept,
never answer, and stall live connections), delay (forward each chunk late) and
reset (RST every connection, live ones too). It runs an asyncio loop in a thread,
so a test flips modes from ordinary synchronous code.
"""

import asyncio
import socket
import struct
import threading
from enum import StrEnum

from tests.support.runner import free_port

CHUNK = 65536


class Mode(StrEnum):
    PASS = "pass"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"
    DELAY = "delay"
    RESET = "reset"


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = Mode.PASS
        self.delay_seconds = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        """Close the listener and every connection before the loop goes, so no
        transport outlives it."""
        assert self._server is not None
        self._server.close()
        self._reset_all()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._server.wait_closed()

    def set_mode(self, mode: Mode, delay_seconds: float = 0.0) -> None:
        self.mode, self.delay_seconds = mode, delay_seconds
        if mode is Mode.RESET:
            self._loop.call_soon_threadsafe(self._reset_all)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.mode in (Mode.REFUSE, Mode.RESET):
            _abort(client_w)
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(client_w)
            return
        self._writers |= {client_w, upstream_w}
        await asyncio.gather(
            self._pipe(client_r, upstream_w),
            self._pipe(upstream_r, client_w),
            return_exceptions=True,
        )
        self._writers -= {client_w, upstream_w}
        for writer in (client_w, upstream_w):
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(CHUNK):
            while self.mode is Mode.BLACKHOLE:
                await asyncio.sleep(0.05)  # the bytes are held, as a frozen peer would
            if self.mode is Mode.DELAY:
                await asyncio.sleep(self.delay_seconds)
            if self.mode in (Mode.RESET, Mode.REFUSE):
                break
            writer.write(data)
            await writer.drain()
        _abort(writer)

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            _abort(writer)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a crashed peer or a firewall would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.close()
