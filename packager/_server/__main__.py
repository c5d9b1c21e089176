"""`python -m packager._server PATH [--host] [--port]`: the container entrypoint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from packager._errors import PackagerError


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve, and return the exit code (1 for a package that cannot be served).

    Exit codes: 0 after a clean shutdown; 1 when the package cannot be served
    (invalid, the port taken) or the model failed to load; 2 for bad
    arguments; 3 when predict calls stayed stuck for runtime.stuck_exit_s;
    128 + N after a second signal N during the shutdown grace period.
    """
    parser = argparse.ArgumentParser(
        prog="python -m packager._server", description="Serve a model package over HTTP."
    )
    parser.add_argument("path", help="the package directory (or its package.yaml)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to bind; 0 picks a free one (default 8080)"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    from packager._server._main import serve

    try:
        return serve(args.path, host=args.host, port=args.port, log_level=args.log_level)
    except PackagerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
