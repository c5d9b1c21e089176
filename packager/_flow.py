"""One request's sync stages, run back to back in worker threads, and the predict slots.

The event loop hands a request's plan to a worker thread (a `Flow`) at its
first sync call. That thread runs the sync calls one after another (validate
is done, then preprocess, predict, postprocess) and wakes the loop once, at
the end, instead of a thread round trip per stage. It hands the plan back
early only for what must run on the loop (an async stage, a batched predict).

Predict is limited to `runtime.predict_concurrency` by `Slots`, permits taken
and given back from any thread. A flow that finds no slot free waits in line
without blocking a thread. When a predict ends and flows are waiting, the
thread keeps the slot and runs the next flow's predict itself (as a dedicated
predict thread would), handing its own flow's remaining stages to the pool:
so preprocess and postprocess never hold a slot, and an uncontended request
moves between threads only twice (loop -> worker -> loop).

A predict whose request gave up on it (its deadline fired) keeps its slot
until it returns: it is `stuck`. While every slot is stuck, a flow that
needs one is refused at once with SlotUnavailable (503), and so is one that
gave up while waiting in line: its work never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

from packager._errors import ModelLoadError, PackagerError, PredictError
from packager._pipeline import Call, Plan, is_stream
from packager._slots import OUTSIDE, PREDICTING, WAITING, Slots

_log = logging.getLogger("packager.runner")
Observer = Callable[[str, float], None]
Put = Callable[[Any], None]


def wrap_error(call: Call, exc: BaseException) -> PackagerError:
    """What a failure of model code in `call` becomes (a PackagerError raised on purpose stays)."""
    if isinstance(exc, PackagerError):
        return exc
    kind = ModelLoadError if call.stage in ("init", "load") else PredictError
    name = "__init__" if call.stage == "init" else call.stage
    if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: never let model code stop us
        return kind(f"{name} raised {type(exc).__name__} ({exc}); model code must not exit the process")
    return kind(f"{name} raised {type(exc).__name__}: {exc}")


class Pending:
    """A flow's answer meaning: this call must run on the loop; the plan waits for its result."""

    __slots__ = ("call",)

    def __init__(self, call: Call) -> None:
        self.call = call


class Flow:
    """A request's plan while worker threads drive it; `future` resolves on the loop.

    It resolves to the plan's result, to a `Pending` call for the loop to
    run, or to the error. A flow is only ever driven by one thread at a time,
    inside its own copy of the request's context variables.
    """

    __slots__ = (
        "call",
        "context",
        "future",
        "gone",
        "has_slot",
        "holds_stream",
        "loop",
        "observe",
        "plan",
        "put",
        "result",
        "slots",
        "state",
        "stuck",
    )

    def __init__(self, plan: Plan, call: Call, slots: Slots, put: Put, observe: Optional[Observer]) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()
        self.context = contextvars.copy_context()
        self.plan, self.call, self.slots, self.put, self.observe = plan, call, slots, put, observe
        self.result: Any = _NOTHING
        self.has_slot = self.gone = self.stuck = self.holds_stream = False
        self.state = OUTSIDE

    # -- in a worker thread ------------------------------------------------------------------

    def run(self) -> Optional[Flow]:
        """Advance until done, parked or the loop is needed; may return a flow to run next here."""
        handoff: Optional[Flow] = self.context.run(self._advance)
        if handoff is not None and self.result is not _NOTHING:
            # our predict is done and the slot went on to `handoff`: the rest of our stages go
            # back to the pool (only now, outside our context: another thread may enter it)
            self.put(self)
        return handoff

    def _advance(self) -> Optional[Flow]:
        call = self.call
        while True:
            if self.result is not _NOTHING:
                value, self.result = self.result, _NOTHING
                try:
                    call = self.call = self.plan.send(value)
                except StopIteration as stop:  # a stream it returns is the loop's to release now
                    self._settle(True, stop.value)
                    return None
                except BaseException as exc:
                    if self.holds_stream:  # e.g. a stream with a postprocess: nobody will read it
                        self.release_stream(value)
                    self._settle(False, exc)
                    return None
            if call.is_async or (call.stage == "predict" and self.slots.batched):
                self._settle(True, Pending(call))
                return None
            if call.stage == "predict":
                if not self.has_slot and not self._take_slot():
                    return None
                handoff = self._predict(call)
                if handoff is not None or self.result is _NOTHING:
                    return handoff
            elif self.gone:
                self._abandoned()
                return None
            else:
                ok, value = self._call(call)
                if not ok:
                    self._settle(False, value)
                    return None
                self.result = value

    def _take_slot(self) -> bool:
        slots = self.slots
        with slots.lock:
            if self.gone:
                return False
            if slots.free > 0:
                slots.free -= 1
                self.state = PREDICTING
                self.has_slot = True
                return True
            if slots.stuck < slots.size:
                slots.line.append(self)
                self.state = WAITING
                return False
        self._settle(False, slots.refusal())
        return False

    def _predict(self, call: Call) -> Optional[Flow]:
        """Run predict holding a slot; then pass the slot on (returned) or free it."""
        ok, value = self._call(call)
        keep = ok and is_stream(value)  # a stream keeps the slot until it is closed
        if keep and self.gone:
            _close(value)
            keep = False
        slots = self.slots
        handoff = None
        with slots.lock:
            self.state = OUTSIDE
            if self.stuck:
                self.stuck = False
                slots.stuck -= 1
            if not keep:
                handoff = slots.pass_on()
        self.has_slot = False
        self.holds_stream = keep
        if self.gone:
            self._abandoned()
        elif ok:
            self.result = value
        else:
            self._settle(False, value)
        return handoff

    def _call(self, call: Call) -> tuple[bool, Any]:
        started = time.perf_counter()
        try:
            value = call.fn(*call.args)
            ok = True
        except BaseException as exc:  # handed to the awaiting task, never lost here
            value = wrap_error(call, exc)
            if value is not exc and call.stage in ("init", "load"):  # keep where load() failed (--reload)
                value.__cause__ = exc
            ok = False
        observe = self.observe
        if observe is not None:
            with _OBSERVING:  # worker threads take turns recording (the loop records other stages)
                observe(call.stage, time.perf_counter() - started)
        return ok, value

    def _abandoned(self) -> None:
        self.plan.close()
        self._settle(False, asyncio.CancelledError())

    def _settle(self, ok: bool, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(self._finish, ok, value)

    # -- on the loop -------------------------------------------------------------------------

    def _finish(self, ok: bool, value: Any) -> None:
        future = self.future
        if future.done():  # nobody waits any more: free what the result holds
            if ok and is_stream(value):
                self.release_stream(value)
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def abandon(self) -> bool:
        """The request gave up (on the loop). True when its predict never started (it was in line)."""
        slots = self.slots
        refused: list[Flow] = []
        with slots.lock:
            self.gone = True
            never_started = self.state == WAITING
            if never_started:
                slots.line.remove(self)
                self.state = OUTSIDE
            elif self.state == PREDICTING:
                self.stuck = True
                slots.stuck += 1
                refused = slots.refuse_waiting()
        for flow in refused:
            flow._settle(False, slots.refusal())
        return never_started

    def release_slot(self) -> None:
        """Give back the slot a stream held (any thread), passing it to the next flow in line."""
        if self.holds_stream:
            self.holds_stream = False
            handoff = self.slots.give()
            if handoff is not None:
                self.put(handoff)

    def release_stream(self, stream: Any) -> None:
        """Close a stream nobody will read and free its slot (the close runs in a thread)."""
        if not self.holds_stream:
            return

        def close() -> None:
            _close(stream)
            self.release_slot()

        threading.Thread(target=close, name="packager-close", daemon=True).start()


def _close(stream: Any) -> None:
    if inspect.isgenerator(stream):
        try:
            stream.close()
        except Exception as exc:  # a generator failing in its own cleanup: log, keep serving
            _log.warning("closing a stream failed: %s", exc)


_NOTHING: Any = object()
_OBSERVING = threading.Lock()
