"""The pieces of `pkg serve --reload` around the swap: watching files, reporting, env, metrics.

Change detection uses watchfiles (uvicorn[standard] brings it, so it is
always installed with packager): inotify/FSEvents instead of polling, and its
`step` gives a debounce for free (an editor's write-temp-then-rename save is
one batch of changes); set WATCHFILES_FORCE_POLLING=1 where events do not
arrive (some network or container mounts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from packager._errors import ModelImportError, ModelLoadError, PackagerError, SpecError
from packager._spec_load import SPEC_FILE

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from packager._server._metrics import Metrics

_log = logging.getLogger("packager.server")
DEBOUNCE_MS = 1000  # longest a burst of changes is gathered before a reload
STEP_MS = 100  # quiet time that ends a burst: a save is seen ~0.1 s after it happens
RESULTS = ("ok", "error")


def package_filter() -> Callable[[Any, str], bool]:
    """watchfiles' default filter (no __pycache__, .git, *.pyc or editor temp files such as
    *.swp, *~, .#*) narrowed to Python files and package.yaml."""
    from watchfiles import DefaultFilter

    default = DefaultFilter()

    def accept(change: Any, path: str) -> bool:
        name = os.path.basename(path)
        return (name.endswith(".py") or name == SPEC_FILE) and default(change, path)

    return accept


async def watch(root: Path, on_change: Callable[[list[str]], Awaitable[None]], stop: asyncio.Event) -> None:
    """Call `on_change(relative paths)` for each burst of changes under `root` until `stop` is set."""
    from watchfiles import awatch

    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # we log each reload ourselves
    changes_seen = awatch(
        root, watch_filter=package_filter(), debounce=DEBOUNCE_MS, step=STEP_MS, stop_event=stop
    )
    async for changes in changes_seen:
        await on_change(sorted({_relative(root, path) for _, path in changes}))


def _relative(root: Path, path: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def report_failure(exc: BaseException, root: Path) -> None:
    """One block on stderr: what broke, where (file and line), and that the old code still serves."""
    where, line = blame(exc, root)
    text = str(exc)
    if where is not None and where not in text:
        text = f"{where} line {line}: {text}" if line else f"{where}: {text}"
    frames = _user_frames(exc, root)
    block = "\n".join(f"  {part}" for part in (text + ("\n" + frames if frames else "")).splitlines())
    _log.error(
        "reload failed; still serving the last version that loaded (save a fix to reload again):\n%s",
        block,
        exc_info=None if isinstance(exc, PackagerError) else exc,  # a bug in packager keeps its traceback
        extra={"event": "reload_failed", "file": where, "line": line},
    )


def blame(exc: BaseException, root: Path) -> tuple[Optional[str], Optional[int]]:
    """The package file (and line) at fault, when it is known."""
    if isinstance(exc, ModelImportError) and exc.file:
        return exc.file, exc.line
    if isinstance(exc, SpecError):
        return _relative(root, exc.file), None
    cause = exc.__cause__ if isinstance(exc, ModelLoadError) and exc.__cause__ is not None else exc
    found: tuple[Optional[str], Optional[int]] = (None, None)
    for frame in _package_frames(cause, root):
        found = (frame.filename, frame.lineno)
    return found


def _package_frames(exc: BaseException, root: Path) -> Iterator[traceback.FrameSummary]:
    """The traceback frames of `exc` in the package's own files, named relative to `root`."""
    resolved = root.resolve()
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            rel = Path(frame.filename).resolve().relative_to(resolved)
        except ValueError:
            continue
        yield traceback.FrameSummary(str(rel), frame.lineno, frame.name, line=frame.line)


def _user_frames(exc: BaseException, root: Path) -> str:
    """The model's own part of a load() or __init__ traceback (empty for other errors)."""
    if not isinstance(exc, ModelLoadError) or isinstance(exc, ModelImportError) or exc.__cause__ is None:
        return ""
    frames = list(_package_frames(exc.__cause__, root))
    return "".join(traceback.format_list(frames)).rstrip()


def swap_environment(
    old: Mapping[str, str], new: Mapping[str, str], outside: Mapping[str, str]
) -> dict[str, Optional[str]]:
    """Unset what the old spec's `environment` set and the new one changes, so that the new
    load applies it (values set outside the spec still win); returns what to restore on failure."""
    restore: dict[str, Optional[str]] = {}
    for name, value in old.items():
        if name not in outside and new.get(name) != value and os.environ.get(name) == value:
            restore[name] = os.environ.pop(name)
    for name in new:
        if name not in old and name not in outside and name not in restore:
            restore[name] = os.environ.get(name)
    return restore


def restore_environment(saved: Mapping[str, Optional[str]]) -> None:
    """Undo `swap_environment` (and what the failed load set) after a failed reload."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def carry_metrics(old: Metrics, new: Metrics) -> None:
    """Counters and histograms go on across a reload (Prometheus counters must not go back)."""
    if old.model == new.model:
        new.statuses, new.latency, new.stages = old.statuses, old.latency, old.stages
        new.batch_sizes = old.batch_sizes


class ReloadCollector:
    """`packager_reloads_total{model, result="ok|error"}` in an app's own registry."""

    def __init__(self, counts: Mapping[str, int], model: str) -> None:
        self._counts = counts
        self._model = model

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "packager_reloads", "Reloads by `pkg serve --reload`, by result.", labels=["model", "result"]
        )
        for result in RESULTS:
            family.add_metric([self._model, result], self._counts.get(result, 0))
        yield family
