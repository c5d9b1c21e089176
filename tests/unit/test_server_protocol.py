"""CoalescingTransport: a response's header and body writes leave as one send."""

from __future__ import annotations

import asyncio
from typing import Any

from packager._server._protocol import MAX_HELD, CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


def make(busy: int = 0) -> tuple[FakeTransport, CoalescingTransport]:
    fake = FakeTransport()
    return fake, CoalescingTransport(fake, asyncio.get_running_loop(), [None] * busy)  # type: ignore[arg-type]


def test_header_and_body_go_out_together_and_a_lone_write_by_the_tick_end() -> None:
    async def test() -> None:
        fake, transport = make()
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert fake.writes == []
        assert transport.get_write_buffer_size() == 19
        transport.write(b"body")
        assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.write(b"chunk")
        await asyncio.sleep(0)
        assert fake.writes[-1] == b"chunk"
        assert transport.get_extra_info("socket") == "info:socket"

    asyncio.run(test())


def test_busy_loop_holds_writes_to_the_tick_end_and_big_writes_pass_through() -> None:
    async def test() -> None:
        fake, transport = make(busy=5)
        for part in (b"a", b"b", b"c"):
            transport.write(part)
        assert fake.writes == []
        await asyncio.sleep(0)
        assert fake.writes == [b"abc"]
        big = b"x" * MAX_HELD
        transport.write(big)
        assert fake.writes[-1] is big
        transport.write(b"tail")
        transport.close()
        assert fake.writes[-1] == b"tail"
        assert fake.closed

    asyncio.run(test())
