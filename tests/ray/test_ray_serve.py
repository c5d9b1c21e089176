"""Ray Serve tests: the real ones run in a pytest inside a private network namespace.

This module never imports ray. `test_ray_serve_on_a_local_cluster` starts tests/ray/netns/ under
`run_in_netns` (loopback only, usage stats off, no dashboard); without unshare, root or ray it
skips, but fails under CI=true. The guard tests check that the inner tests refuse to run outside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ray_netns import in_private_netns, netns_problem, run_in_netns

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]
INNER = ["-m", "pytest", "tests/ray/netns", "-p", "no:cacheprovider", "-q", "-rfEs"]
INNER += ["-W", "ignore::DeprecationWarning"]  # ray's own pydantic/protobuf deprecations


def netns_or_skip() -> None:
    problem = netns_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the Ray tests must run in CI: {problem}")
    pytest.skip(problem)


def test_ray_serve_on_a_local_cluster() -> None:
    netns_or_skip()
    result = run_in_netns([sys.executable, *INNER], timeout=420, cwd=str(ROOT))
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in summary
    assert "skipped" not in summary
    assert "deselected" not in summary


def test_pkg_deploy_run_serves_until_interrupted(tmp_path: Path) -> None:
    """`pkg deploy --target ray --run`: Ray's own `serve run` on the written config, in a namespace
    of its own (a fresh local Ray), answering through Ray's proxy and gone after one Ctrl-C."""
    netns_or_skip()
    inner = [sys.executable, str(ROOT / "tests" / "ray" / "deploy_run_inner.py"), str(tmp_path)]
    result = run_in_netns(inner, timeout=300, cwd=str(ROOT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    tail = report.pop("log_tail")
    assert report == {
        "ready": True,
        "predict": [200, {"echo": {"via": "pkg deploy"}, "pid": report["predict"][1]["pid"]}],
        "exit_code": 0,
        "stop_seconds": report["stop_seconds"],
        "still_serving": False,
        "config_written": True,
    }, tail


def test_this_process_is_not_in_the_namespace() -> None:
    assert not in_private_netns()  # so the guard below has something to refuse
    assert "ray" not in sys.modules  # nothing in the outer run imported ray


def test_inner_tests_refuse_to_run_outside_a_private_namespace() -> None:
    env = {**os.environ, "PACKAGER_RAY_NETNS": "1"}  # claims to be inside, but is not
    code = "import sys; sys.path.insert(0, 'tests/ray/netns'); import conftest"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "refusing to start Ray outside a private network namespace" in result.stderr


def test_run_in_netns_sees_only_loopback() -> None:
    netns_or_skip()
    code = "import socket; print([n for _, n in socket.if_nameindex()])"
    result = run_in_netns([sys.executable, "-c", code], timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['lo']"
    variables = run_in_netns(
        [sys.executable, "-c", "import os; print(os.environ['RAY_USAGE_STATS_ENABLED'])"], timeout=60
    )
    assert variables.stdout.strip() == "0"
