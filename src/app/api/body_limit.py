"""Read every request body in full, within a size and a time limit, before the app runs.

An oversized body is answered 413 only once the client has sent it (up to
DRAIN_LIMIT_BYTES, read and thrown away): a server that answers and closes while
the client is still sending resets the connection, and the client sees a network
error instead of its 413. A client announcing `Expect: 100-continue` is answered at
once, as it waits for our word before it sends.

A body that has not fully arrived REQUEST_BODY_TIMEOUT_SECONDS after the request
began is answered 408 and the connection closed. The body is read here, on the event
loop, so a client trickling its body holds no thread of the pool that runs the
routes.
"""

import asyncio
import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Past this much thrown-away body, the connection is closed rather than drained.
DRAIN_LIMIT_BYTES = 8 * 1024 * 1024


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except _Refused as refused:
            await _refuse(send, refused.status, refused.detail)
            return
        if body is None:  # the client went away
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        headers = dict(scope["headers"])
        too_large = _Refused(413, f"Request body exceeds {self.max_bytes} bytes")
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            waits_for_us = headers.get(b"expect", b"").lower() == b"100-continue"
            if not waits_for_us and int(declared) <= DRAIN_LIMIT_BYTES:
                await _drain(receive, deadline, DRAIN_LIMIT_BYTES)
            raise too_large
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunks.append(message.get("body", b""))
                    received += len(chunks[-1])
                    more = message.get("more_body", False)
                    if received > self.max_bytes or not more:
                        break
        except TimeoutError:
            detail = f"The request body did not arrive within {self.timeout_seconds:g} seconds"
            raise _Refused(408, detail) from None
        if received > self.max_bytes:
            if more:
                await _drain(receive, deadline, DRAIN_LIMIT_BYTES - received)
            raise too_large
        return b"".join(chunks)


async def _drain(receive: Receive, deadline: float, limit: int) -> None:
    """Read and drop the rest of the body, up to `limit` bytes and until `deadline`."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline):
            while drained <= limit:
                message = await receive()
                if message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


def _replay(body: bytes, receive: Receive) -> Receive:
    """The app's receive: the body read already, then the client's own (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # Whatever of the body is still unread must not be taken for a request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
