"""An https server on 127.0.0.1 with a throw-away self-signed certificate, for weight-fetch tests.

tests/ is on sys.path (pytest puts tests/conftest.py's folder there), so tests/unit and
tests/docker both `from tls_server import https_server, self_signed`; the unique name keeps it
from clashing with another folder's helper module.
"""

from __future__ import annotations

import contextlib
import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


def self_signed(where: Path) -> tuple[Path, Path]:
    """(key, certificate) for 127.0.0.1, valid for a day, written into `where`."""
    key, crt = where / "key.pem", where / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return key, crt


@contextlib.contextmanager
def https_server(
    handler: type[http.server.BaseHTTPRequestHandler], key: Path, crt: Path
) -> Iterator[tuple[str, http.server.ThreadingHTTPServer]]:
    """`handler` served over TLS on a free loopback port in a daemon thread; yields (URL, server)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(crt), str(key))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
