"""`pkg predict -o DIR`: the images, audio and other files in an output, written to DIR.

A string in the output is a file when it is a data URI, when the output schema
declares it bytes/base64 there (``format: binary`` or ``base64``,
``contentEncoding: base64``), or when it is base64 whose bytes start with the
magic bytes of a known type (_filetypes.json). Each file is named after its
JSON path (``images.0.png``; the whole output: ``output.png``; chunk N of a
stream: ``chunk-N.png``), written atomically, listed on stderr, and replaced
by its path in what is printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Union

from packager import _cli_schema as js
from packager._errors import PackagerError
from packager._filetypes import file_in_text

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_NAME = 120


class FileSaver:
    """Finds the files in outputs (JSON values) and writes them into `directory`."""

    def __init__(self, directory: Union[str, Path], schema: js.Schema) -> None:
        self.directory = Path(directory)
        self.schema = schema
        self.written: list[Path] = []
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PackagerError(f"cannot create {directory}: {exc.strerror}; pick another -o DIR") from None

    def replace(self, value: Any, path: tuple[Union[str, int], ...] = ()) -> tuple[Any, bool]:
        """`value` (plain JSON) with each file written and replaced by its path; True if any was."""
        return self._walk(value, self.schema, path)

    def _walk(self, value: Any, schema: js.Schema, path: tuple[Union[str, int], ...]) -> tuple[Any, bool]:
        if isinstance(value, str):
            return self._string(value, schema, path)
        items: Any
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            return value, False
        changed = False
        out: dict[Any, Any] = {}
        for key, item in items:
            out[key], saved = self._walk(item, js.child(schema, self.schema, key), (*path, key))
            changed = changed or saved
        return (list(out.values()) if isinstance(value, list) else out), changed

    def _string(self, text: str, schema: js.Schema, path: tuple[Union[str, int], ...]) -> tuple[Any, bool]:
        declared = js.binary_kind(schema, self.schema) is not None
        found = file_in_text(text, declared, js.media_type(schema, self.schema))
        if found is None:
            return text, False
        data, ext = found
        target = self.directory / f"{file_stem(path)}.{ext}"
        write_atomic(target, data)
        self.written.append(target)
        sys.stderr.write(f"wrote {target} ({len(data)} bytes)\n")
        sys.stderr.flush()
        return str(target), True


def file_stem(path: tuple[Union[str, int], ...]) -> str:
    """``('images', 0)`` → ``images.0``; the empty path is ``output``; unsafe characters become ``_``."""
    parts = [_UNSAFE.sub("_", str(part)).strip("_") or "_" for part in path]
    return ".".join(parts)[:_MAX_NAME] or "output"


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a temporary file in the same folder: all of it, or nothing."""
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise PackagerError(f"cannot write into {target.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise PackagerError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
