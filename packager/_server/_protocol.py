"""uvicorn's httptools protocol with response writes coalesced.

uvicorn writes a response's status line and headers, then its body, as two
socket writes (two syscalls, two TCP segments). Here uvicorn is handed a
transport that holds a small write until the next one and sends both as one.
When other requests are in flight, writes are held to the end of the event
loop's tick instead, so a busy loop makes fewer, larger writes (measured:
about 10% more throughput at 32 connections; no change for a lone client).
Only `connection_made` is overridden, so this relies on nothing in uvicorn
beyond the asyncio Protocol contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sized
from typing import Any, Optional

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HELD = 64 * 1024


class CoalescingTransport:
    """Wraps a transport; `busy` (other requests in flight) makes it hold writes to the tick's end."""

    __slots__ = ("_busy", "_handle", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, busy: Sized) -> None:
        self._transport = transport
        self._loop = loop
        self._busy = busy
        self._held: Optional[bytes] = None
        self._handle: Optional[asyncio.Handle] = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            if len(data) >= MAX_HELD:
                self._transport.write(data)
                return
            self._held = data
            self._handle = self._loop.call_soon(self.flush)
            return
        data = held + data
        if len(self._busy) > 1 and len(data) < MAX_HELD:
            self._held = data
            return
        self._held = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._transport.write(data)

    def flush(self) -> None:
        held, self._held, self._handle = self._held, None, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose transport coalesces each response's writes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescingTransport(transport, self.loop, self.tasks)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]
