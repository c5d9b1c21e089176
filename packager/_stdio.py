"""Keep stdout for machine output: what model code prints goes to stderr instead.

`pkg predict` and `pkg schema` promise JSON on stdout, and the server's
stdout is not a log. Inside `model_output_to_stderr()` file descriptor 1 is a
copy of descriptor 2 and ``sys.stdout`` is ``sys.stderr``, so ``print()``, a
logging handler made on ``sys.stdout`` and a C extension writing to fd 1 all
land on stderr; `real_stdout()` is where the command writes its own output.
When stdout has no file descriptor (a test harness's capture), only
``sys.stdout`` is swapped.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any, Optional

_lock = threading.Lock()
_real: Optional[IO[bytes]] = None  # set while redirected


def real_stdout() -> IO[bytes]:
    """The binary stream of the command's own output: the real stdout, even while redirected."""
    if _real is not None:
        return _real
    return _binary(sys.stdout)


@contextlib.contextmanager
def model_output_to_stderr() -> Iterator[IO[bytes]]:
    """While inside, everything written to stdout goes to stderr; yields the real stdout.

    Nested uses share the outermost redirection.
    """
    global _real
    with _lock:
        if _real is not None:
            nested: Optional[IO[bytes]] = _real
        else:
            nested = None
            original = sys.stdout
            _flush(original)
            saved = _dup_stdout(original)
            _real = (
                os.fdopen(saved, "wb", buffering=0, closefd=False) if saved is not None else _binary(original)
            )
            sys.stdout = sys.stderr
            real = _real
    if nested is not None:
        yield nested
        return
    try:
        yield real
    finally:
        with _lock:
            _flush(sys.stdout)
            _flush(original)
            if saved is not None:
                os.dup2(saved, 1)
                os.close(saved)
            sys.stdout = original
            _real = None


def _dup_stdout(stream: Any) -> Optional[int]:
    """A copy of fd 1, after pointing fd 1 at stderr; None when stdout is not fd 1."""
    try:
        if stream.fileno() != 1:
            return None
        err = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None
    saved = os.dup(1)
    os.dup2(err, 1)
    return saved


def _binary(stream: Any) -> IO[bytes]:
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else stream  # type: ignore[no-any-return]


def _flush(stream: Any) -> None:
    with contextlib.suppress(AttributeError, ValueError, OSError):
        stream.flush()
