"""How the server logs a failed request, and the 404 it answers for a path it does not serve."""

from __future__ import annotations

import logging

from packager._errors import InputError, NotReadyError, OverloadedError, PackagerError, PredictTimeout
from packager._server import _stream
from packager._server._http import HTTPError

_log = logging.getLogger("packager.server")
# the client's own doing, or the server saying no: answered, never logged
_QUIET = (HTTPError, InputError, OverloadedError, NotReadyError)


def log_failure(exc: BaseException, request_id: str) -> None:
    """One log line for a failed request; a traceback only for errors that are not the client's."""
    if isinstance(exc, _stream.ShutdownCutOff):
        _log.warning("request cut off at shutdown: %s", exc, extra={"request_id": request_id})
        return
    if isinstance(exc, _QUIET):
        return
    if isinstance(exc, PredictTimeout):
        _log.warning("request timed out: %s", exc, extra={"request_id": request_id})
    elif isinstance(exc, PackagerError):
        _log.error("predict failed: %s", exc, exc_info=exc, extra={"request_id": request_id})
    else:
        _log.error("error while serving a request", exc_info=exc, extra={"request_id": request_id})


def not_found(path: str, name: str) -> HTTPError:
    """404 for `path`, naming the served model when the path asks for another one."""
    for prefix in ("/v1/models/", "/v2/models/"):
        if path.startswith(prefix):
            asked = path[len(prefix) :].split("/")[0].split(":")[0]
            if asked != name:
                return HTTPError(404, f"no model named {asked!r}; this server serves {name!r}")
    return HTTPError(404, f"no such endpoint: {path}")
