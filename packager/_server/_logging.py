"""Structured logs: JSON lines when stderr is not a terminal, short text lines when it is.

The request id lives in a context variable, so every line logged while a
request is served (by the server or by model code, threads included) carries it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import time
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import IO, Any, Optional, TypeVar

import orjson

REQUEST_ID: ContextVar[Optional[str]] = ContextVar("packager_request_id", default=None)
T = TypeVar("T")
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, exc, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out and not key.startswith("_") and key != "color_message":
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """`HH:MM:SS level logger [request id] message` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        text = super().format(record)
        return text.replace(f" {record.name} ", f" {record.name} [{request_id}] ", 1) if request_id else text


def configure_logging(level: str = "info", stream: IO[str] | None = None, json: bool | None = None) -> None:
    """Send packager's, uvicorn's and the model's logs to `stream` (stderr) in one format."""
    stream = stream or sys.stderr
    use_json = json if json is not None else not _isatty(stream)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "packager"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(level.upper())
    logging.getLogger("uvicorn.access").disabled = True


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def background(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task that does not inherit the current request's context (so not its request id)."""
    return contextvars.Context().run(asyncio.ensure_future, coro)
