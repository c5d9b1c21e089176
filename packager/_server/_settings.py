"""Server settings read from the environment, checked when the server starts."""

from __future__ import annotations

import os
from collections.abc import Mapping

from packager._errors import PackagerError

DEFAULT_MAX_BODY = 64 * 1024 * 1024
MAX_BODY_VARIABLE = "PACKAGER_MAX_BODY_BYTES"


def max_body_bytes(environ: Mapping[str, str] = os.environ) -> int:
    """The request body cap from $PACKAGER_MAX_BODY_BYTES (unset or empty: 64 MiB).

    A value that is not a positive whole number of bytes is a PackagerError,
    so `pkg serve` and the container refuse to start rather than crash or
    cap every body at nothing.
    """
    raw = environ.get(MAX_BODY_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_BODY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise PackagerError(
            f"{MAX_BODY_VARIABLE}={raw!r} is not a positive whole number of bytes; "
            f"set it like {MAX_BODY_VARIABLE}={DEFAULT_MAX_BODY} (64 MiB, the default) or unset it"
        )
    return value
