"""Predict slots: `runtime.predict_concurrency` permits, taken and given back from any thread.

See _flow.py for how flows use them: a flow that finds no slot waits in
line without blocking a thread; a slot held by a predict whose request gave
up on it is stuck until that predict returns.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Optional

from packager._errors import SlotUnavailable

if TYPE_CHECKING:
    from packager._flow import Flow

# Flow.state, guarded by Slots.lock
OUTSIDE, WAITING, PREDICTING = 0, 1, 2


class Slots:
    """`size` predict permits, the line of flows waiting for one, and how many are stuck."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.batched = False  # predict goes to the batcher, on the loop
        self.free = size
        self.stuck = 0
        self.line: deque[Flow] = deque()
        self.lock = threading.Lock()

    def refusal(self) -> SlotUnavailable:
        return SlotUnavailable(
            f"all {self.size} predict slot(s) are held by calls that outlived runtime.request_timeout_s; "
            "retry shortly (the server stops being ready and restarts if they never return)"
        )

    def give(self) -> Optional[Flow]:
        """Free a slot, or pass it to the next flow in line (returned: run its predict next)."""
        with self.lock:
            return self.pass_on()

    def pass_on(self) -> Optional[Flow]:
        """`give`, for a caller holding the lock."""
        if self.line:
            flow = self.line.popleft()
            flow.state = PREDICTING
            flow.has_slot = True
            return flow
        self.free += 1
        return None

    def refuse_waiting(self) -> list[Flow]:
        """Empty the line when every slot is stuck (caller holds the lock)."""
        waiting = list(self.line) if self.stuck >= self.size else []
        if waiting:
            self.line.clear()
            for flow in waiting:
                flow.state = OUTSIDE
        return waiting
