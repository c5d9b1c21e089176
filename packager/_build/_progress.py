"""How a build shows its progress.

On a terminal (and unless $PACKAGER_PROGRESS=plain), one live line drawn with rich: the step that
runs, how many steps are done and how many came from the cache, the time so far; docker's own
output is kept back and its end shown only when the build fails. Elsewhere (CI logs, a file, a
`log=` stream), docker's lines are passed through as they come. Both end with one summary line.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.status import Status

from packager._build._steps import Steps

SHOWN_ON_FAILURE = 40  # docker's last lines, shown on a terminal when the build fails


class Progress:
    """Feed it docker's lines (`line`); use it as a context manager around the build."""

    def __init__(self, out: IO[str], tag: str, steps: Steps) -> None:
        self.out, self.tag, self.steps = out, tag, steps
        self.started = time.monotonic()
        live = os.environ.get("PACKAGER_PROGRESS", "auto") != "plain" and _is_terminal(out)
        self.console = Console(file=out, highlight=False) if live else None
        self.status: Status | None = None
        self.kept: list[str] = []

    def __enter__(self) -> Progress:
        if self.console is not None:
            self.status = self.console.status(self._text())
            self.status.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.status is not None:
            self.status.stop()

    def line(self, raw: str) -> None:
        """One line of docker's output."""
        self.steps.feed(raw.rstrip("\n"))
        if self.console is None:
            self.out.write(raw)
            self.out.flush()
            return
        self.kept = [*self.kept[-(SHOWN_ON_FAILURE - 1) :], raw.rstrip("\n")]
        if self.status is not None:
            self.status.update(self._text())

    def finish(self, ok: bool) -> None:
        """The summary line; on a terminal after a failure, docker's last lines first."""
        if self.status is not None:
            self.status.stop()
        if self.console is not None and not ok:
            self.console.print("\n".join(self.kept), markup=False)
        self.out.write(f"packager: {self.summary(ok)}\n")
        self.out.flush()

    def summary(self, ok: bool) -> str:
        steps = self.steps.steps()
        cached = sum(1 for key in steps if key in self.steps.cached)
        verb = "built" if ok else "failed to build"
        return f"{verb} {self.tag} in {time.monotonic() - self.started:.1f} s ({len(steps)} steps, {cached} cached)"

    def _text(self) -> str:
        done = len(self.steps.steps())
        return f"building {self.tag}: {self.steps.now()}  [{done} steps, {time.monotonic() - self.started:.0f} s]"


def _is_terminal(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
