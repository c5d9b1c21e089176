"""`pkg push IMAGE REGISTRY/REPO[:TAG]`: tag a local image and push it, with progress.

Credentials are the engine's (`docker login REGISTRY`); a refusal, an unreachable registry and
an unknown image each end in one PackagerError saying what to do.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import docker.errors

from packager._container._engine import engine, get_image
from packager._errors import PackagerError

_AUTH = ("unauthorized", "authentication required", "no basic auth credentials", "denied", "forbidden")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "dial tcp",
    "i/o timeout",
    "timeout",
    "no route to host",
)
_QUARTERS = (25, 50, 75)


@dataclass(frozen=True)
class Target:
    """Where to push: `repository` (with its registry) and `tag`."""

    registry: str
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


def parse_target(text: str) -> Target:
    """'REGISTRY/REPO[:TAG]' -> Target; a name without a registry part means Docker Hub."""
    if "@" in text or not text or text != text.strip():
        raise PackagerError(f"{text!r}: write the target as REGISTRY/REPO[:TAG], without a digest")
    name, colon, tag = text.rpartition(":")
    if not colon or "/" in tag:
        name, tag = text, "latest"
    first, slash, _ = name.partition("/")
    local = first == "localhost" or "." in first or ":" in first
    registry = first if slash and local else "docker.io"
    if not name or name.endswith("/") or not tag:
        raise PackagerError(f"{text!r}: write the target as REGISTRY/REPO[:TAG]")
    return Target(registry, name, tag)


def push_error(message: str, target: Target) -> str:
    """The one line a failed push ends with, from the engine's message."""
    lowered = message.lower()
    if any(word in lowered for word in _AUTH):
        return (
            f"the registry {target.registry} refused {target} ({message.strip()}); "
            f"run `docker login {target.registry}` first, with an account that may push there"
        )
    if any(word in lowered for word in _UNREACHABLE):
        return f"cannot reach the registry {target.registry} ({message.strip()}); check its address and that it runs"
    return f"pushing {target} failed: {message.strip()}"


@dataclass
class Progress:
    """Turns the engine's push events into lines worth printing: each layer's new status, and
    its upload at 25/50/75 %. `digest` is the pushed manifest's, once the engine says it."""

    seen: dict[str, str] = field(default_factory=dict)
    digest: str | None = None

    def feed(self, event: Mapping[str, Any]) -> Iterator[str]:
        aux = event.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        layer, status = event.get("id"), event.get("status")
        if not status:
            return
        if not layer:
            yield str(status)
            return
        detail = event.get("progressDetail") or {}
        shown = status
        if status == "Pushing" and detail.get("total"):
            done = 100 * int(detail.get("current", 0)) // int(detail["total"])
            shown = f"Pushing {max((q for q in _QUARTERS if q <= done), default=0)}%"
        if self.seen.get(layer) != shown:
            self.seen[layer] = shown
            yield f"{layer}: {shown}"


def follow_push(events: Iterable[Mapping[str, Any]], target: Target, out: IO[str]) -> str:
    """Print the progress of `events`; the pushed digest, or PackagerError on an error event."""
    progress = Progress()
    for event in events:
        error = event.get("error") or (event.get("errorDetail") or {}).get("message")
        if error:
            raise PackagerError(push_error(str(error), target))
        for line in progress.feed(event):
            out.write(line + "\n")
            out.flush()
    if progress.digest is None:
        raise PackagerError(f"pushing {target} ended without a digest from the registry; try again")
    return progress.digest


def push_image(image: str, target_text: str, log: IO[str] | None = None) -> str:
    """Tag the local `image` as the target and push it; return 'REPO:TAG@sha256:...'."""
    out = log if log is not None else sys.stderr
    target = parse_target(target_text)
    client = engine()
    missing = "no image {reference!r} on the local Docker engine; build it with `pkg build` first"
    found = get_image(client, image, missing)
    tagged = str(target) not in found.tags  # a tag this push adds, taken back if the push fails
    try:
        found.tag(target.repository, target.tag)
        events = client.images.push(target.repository, target.tag, stream=True, decode=True)
        return f"{target}@{follow_push(events, target, out)}"
    except (PackagerError, docker.errors.APIError) as exc:
        if tagged:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(str(target))
        if isinstance(exc, PackagerError):
            raise
        raise PackagerError(push_error(str(exc.explanation or exc), target)) from None
