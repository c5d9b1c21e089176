"""A minimal HTTP/1.1 client to the inner server (spec `server:`) on 127.0.0.1: h11 over asyncio streams.

Why not httpx: the image leaves httpx out on purpose (RUNTIME_REQUIREMENTS in
_build/_context.py), while h11 is already there as a dependency of uvicorn. One
connection per request (``connection: close``), so nothing is pooled and a
request cut off by its client closes its socket to the inner server at once.
Responses come back as they arrive (`Answer.chunks`), so streams pass through
without buffering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Optional

import h11

from packager._errors import PackagerError

Headers = list[tuple[bytes, bytes]]
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length",
    }
)  # fmt: skip
_READ = 65536


class InnerUnreachable(PackagerError):
    """The inner server refused the connection or closed it before answering in full."""


class Answer:
    """The inner server's response: status and headers now, the body as it arrives."""

    def __init__(
        self,
        status: int,
        headers: Headers,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.status = status
        self.headers = headers
        self._conn, self._reader, self._writer = conn, reader, writer

    @property
    def content_type(self) -> bytes:
        return next((v for k, v in self.headers if k == b"content-type"), b"application/octet-stream")

    @property
    def streams(self) -> bool:
        """Server-Sent Events: passed through chunk by chunk rather than read whole."""
        return self.content_type.split(b";")[0].strip().lower() == b"text/event-stream"

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's pieces as they arrive; InnerUnreachable when the connection breaks first."""
        try:
            while True:
                event = await _next_event(self._conn, self._reader)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return
        finally:
            self.close()

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        self._writer.close()


async def send_request(
    port: int, method: str, target: bytes, headers: Headers, body: bytes, timeout: Optional[float] = None
) -> Answer:
    """Send one request to 127.0.0.1:`port` and return once the response head has arrived."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        raise InnerUnreachable(f"cannot connect to the model server on port {port} ({_why(exc)})") from None
    conn = h11.Connection(h11.CLIENT)
    head = [(b"host", b"127.0.0.1:%d" % port), (b"connection", b"close")]
    head += [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    head.append((b"content-length", b"%d" % len(body)))
    try:
        writer.write(conn.send(h11.Request(method=method, target=target, headers=head)) or b"")
        writer.write((conn.send(h11.Data(data=body)) if body else b"") or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        while True:
            event = await asyncio.wait_for(_next_event(conn, reader), timeout)
            if isinstance(event, h11.Response):
                return Answer(event.status_code, list(event.headers), conn, reader, writer)
    except BaseException as exc:
        writer.close()
        if isinstance(exc, (OSError, asyncio.TimeoutError)):
            raise InnerUnreachable(f"the model server did not answer ({_why(exc)})") from None
        raise


async def get_status(port: int, path: str, timeout: float) -> int:
    """The status a GET of `path` answers (its body read and dropped); InnerUnreachable when none."""
    answer = await send_request(port, "GET", path.encode(), [], b"", timeout)
    try:
        await asyncio.wait_for(answer.read(), timeout)
    except asyncio.TimeoutError:
        answer.close()
    return answer.status


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise InnerUnreachable(f"the model server broke the connection ({exc})") from None
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await reader.read(_READ)
        except OSError as exc:
            raise InnerUnreachable(f"the model server broke the connection ({_why(exc)})") from None
        conn.receive_data(data)


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or type(exc).__name__
