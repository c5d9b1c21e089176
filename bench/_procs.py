"""Start servers on loopback, wait for readiness, read their CPU time, stop them."""

from __future__ import annotations

import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import BENCH, ROOT

HOST = "127.0.0.1"
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def packager_cmd(package: Path, port: int) -> list[str]:
    """The packager server, as the container entrypoint runs it."""
    return [sys.executable, "-m", "packager._server", str(package), "--host", HOST, "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def starlette_cmd(port: int) -> list[str]:
    """The hand-written baseline (bench/baseline_app.py) under uvicorn, uvloop + httptools, no access log."""
    return [sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(BENCH), "--host", HOST,
            "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning"]  # fmt: skip


@dataclass
class Server:
    """A server process on loopback; `name` is the model name in its URLs."""

    label: str
    name: str
    cmd: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def predict_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1/models/{self.name}:predict"

    @property
    def ready_path(self) -> str:
        return f"/v1/models/{self.name}"

    def start(self) -> float:
        """Spawn the process; return the spawn time (perf_counter)."""
        handle, name = tempfile.mkstemp(prefix=f"bench-{self.label}-", suffix=".log")
        self.log = Path(name)
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        os.close(handle)
        return started

    def wait_ready(self, timeout: float = 180.0, interval: float = 0.005) -> float:
        """Poll readiness until it answers 200; return the time it did (perf_counter)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if get_status(self.port, self.ready_path) == 200:
                return time.perf_counter()
            time.sleep(interval)
        raise RuntimeError(f"{self.label} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its child processes."""
        assert self.proc is not None
        return sum(_cpu_of(pid) for pid in _tree(self.proc.pid))

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s) and delete its log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.unlink(missing_ok=True)

    def describe(self) -> str:
        """Whether the process still runs, and the end of its log."""
        code = None if self.proc is None else self.proc.poll()
        state = "running" if code is None else f"exited with {code}"
        return f"{self.label} (pid {self.proc.pid if self.proc else '-'}) {state}; log:\n{self.log_tail()}"

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def get_status(port: int, path: str) -> int:
    """HTTP status of GET path, or 0 when nothing answers yet."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def post(url: str, body: bytes) -> tuple[int, bytes]:
    """One POST of a JSON body; (status, response body)."""
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("POST", "/" + path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def busy_seconds() -> float:
    """CPU time processes on this machine have used since boot (all cores, from /proc/stat).

    Interrupt and softirq time is left out: on loopback it is mostly the benchmark's own
    packets, which no process is charged for.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / _TICK


def children_seconds() -> float:
    """CPU time used by this process's finished (waited-for) children, such as wrk runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(idle_cores: float = 1.8, window: float = 1.0, limit: float = 90.0) -> bool:
    """Wait until the machine is nearly idle for `window` seconds; False if it never was within `limit`."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = busy_seconds()
        time.sleep(window)
        if cores - (busy_seconds() - before) / window >= min(idle_cores, cores * 0.9):
            return True
    return False


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the ")" closing the command name: state is fields[0], utime fields[11], stime fields[12].
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tree(root: int) -> list[int]:
    """root and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found
