"""Run Ray only inside a private network namespace: the one way tests, benches and examples start it.

Ray must never reach beyond this machine: its usage-stats code contacts a cloud metadata
address and looks up metadata host names at start, and it listens on every interface. So
every Ray process runs under

    unshare --net --pid --fork --kill-child --mount-proc sh -c 'ip link set lo up && exec "$@"'

a new network namespace with only loopback up (nothing outside is reachable, nothing outside
can connect), and a new PID namespace, so that every Ray process dies with the command (no
leftover raylet), with RAY_USAGE_STATS_ENABLED=0, RAY_AUTH_MODE=disabled (nothing but this
namespace can reach the cluster) and the dashboard off (`RAY_INIT` below).

`run_in_netns(argv)` runs a command there; `require_private_netns()` is called by every
process that imports ray before it does (tests/ray/netns/conftest.py, bench/ray.py's inner
part), and raises when the process can reach any interface but loopback.

Stable names (bench/ray.py imports them): NETNS_ENV, RAY_INIT, netns_problem, run_in_netns,
in_private_netns, require_private_netns.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

NETNS_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "PACKAGER_RAY_NETNS": "1",
}
# ray.init() keyword arguments for the 2-core machine: no dashboard, a small object store.
RAY_INIT: dict[str, Any] = {
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 80 * 1024 * 1024,
    "log_to_driver": False,
}
_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
_LOOPBACK_UP = 'ip link set lo up && exec "$@"'


def netns_problem() -> str | None:
    """Why Ray cannot run here in a private namespace, or None when it can."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (util-linux / iproute2)"
    if os.geteuid() != 0:
        return "new network namespaces need root here (unshare --net)"
    if importlib.util.find_spec("ray") is None:  # finds it without importing it
        return "ray is not installed: pip install -e '.[ray]' (scripts/venv does)"
    return None


def in_private_netns() -> bool:
    """True when loopback is the only network interface this process can see."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_private_netns() -> None:
    """Raise unless this process is in a private network namespace (call before `import ray`)."""
    if not in_private_netns() or os.environ.get("PACKAGER_RAY_NETNS") != "1":
        names = [name for _, name in socket.if_nameindex()]
        raise RuntimeError(
            f"refusing to start Ray outside a private network namespace (interfaces: {names}); "
            "run it through tests/ray/ray_netns.py:run_in_netns"
        )


def run_in_netns(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a new network + PID namespace (loopback only); output captured as text.

    On timeout the whole namespace is killed (its first process is its init) and
    TimeoutExpired is raised with what was printed so far.
    """
    problem = netns_problem()
    if problem is not None:
        raise RuntimeError(f"cannot run Ray in a private namespace: {problem}")
    full_env = {**os.environ, **NETNS_ENV, **(env or {})}
    command = [*_UNSHARE, "sh", "-c", _LOOPBACK_UP, "sh", *argv]
    with subprocess.Popen(
        command,
        env=full_env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, out, err) from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


if __name__ == "__main__":  # python tests/ray/ray_netns.py CMD...: run CMD in a private namespace
    result = run_in_netns(sys.argv[1:], timeout=3600)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    sys.exit(result.returncode)
