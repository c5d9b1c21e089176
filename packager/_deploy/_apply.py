"""`pkg deploy --apply`: hand the written folder to `kubectl apply`, when there is a cluster to talk to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from packager._errors import PackagerError

CONTEXT_TIMEOUT_S = 20
APPLY_TIMEOUT_S = 300


def kubectl_apply(out_dir: Path, *, kubectl: str = "kubectl") -> str:
    """Run `kubectl apply -f out_dir` and return what it printed; PackagerError when it cannot."""
    found = shutil.which(kubectl)
    if found is None:
        raise PackagerError(
            f"--apply needs kubectl, which is not on PATH; install it, or run `kubectl apply -f {out_dir}` "
            "where it is"
        )
    context = _run([found, "config", "current-context"], CONTEXT_TIMEOUT_S)
    if context.returncode != 0 or not context.stdout.strip():
        raise PackagerError(
            "--apply: kubectl has no current context (`kubectl config current-context` failed); "
            f"pick a cluster with `kubectl config use-context NAME`, then run `kubectl apply -f {out_dir}`"
        )
    done = _run([found, "apply", "-f", str(out_dir)], APPLY_TIMEOUT_S)
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit code {done.returncode}"
        raise PackagerError(f"kubectl apply -f {out_dir} failed (context {context.stdout.strip()}): {why}")
    return done.stdout


def _run(command: list[str], timeout_s: int) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise PackagerError(
            f"`{' '.join(command[1:3])}` took longer than {timeout_s}s; is the cluster reachable?"
        ) from None
    except OSError as exc:
        raise PackagerError(f"cannot run {command[0]}: {(exc.strerror or str(exc)).lower()}") from None
