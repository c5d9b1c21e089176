"""Secrets for a container: staged in a private directory that is mounted read-only at /secrets.

The values never go into the container's command line, environment, labels or logs (all of
which `docker inspect` shows). The directory lives in /dev/shm where there is one (memory, not
disk), inside a parent only this user can enter (0700); the mounted directory is 0700 and each
file 0600, owned by the container's user when this process may hand them over (root, or the
same uid), otherwise readable inside the container (0755/0644) behind the private parent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from packager._errors import PackagerError

MOUNT = "/secrets"
_SHM = Path("/dev/shm")  # noqa: S108 (memory; the private directory comes from mkdtemp)


def parse_env(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--env K=V` pairs as a mapping; secrets are refused here (the environment is not private)."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PackagerError(f"--env {pair!r}: write KEY=VALUE")
        if key.startswith("PACKAGER_SECRET_"):
            raise PackagerError(
                f"--env {key}: pass secrets with --secret NAME (read from ${key} here), "
                "not --env: a container's environment shows in `docker inspect`"
            )
        env[key] = value
    return env


def parse_user(user: str, passwd: str) -> tuple[int, int] | None:
    """The uid and gid of an image's USER ('app', '1000', 'app:app', '' for root) from /etc/passwd."""
    name, _, group = (user or "0").partition(":")
    entries = {}
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            entries[fields[0]] = (int(fields[2]), int(fields[3]))
    if name.isdigit():
        uid, gid = int(name), next((g for u, g in entries.values() if u == int(name)), int(name))
    elif name in entries:
        uid, gid = entries[name]
    else:
        return None
    if group.isdigit():
        gid = int(group)
    return uid, gid


def stage_secrets(values: Mapping[str, str], owner: tuple[int, int] | None) -> Path:
    """Write each secret to its own file in a new private directory; return that directory.

    `owner` is the container user's (uid, gid), or None when unknown. The caller removes the
    directory with `remove_staged` once the model has read the files, or the run failed.
    """
    for name in values:
        if not name or "/" in name or name in (".", ".."):
            raise PackagerError(f"secret name {name!r} cannot be a file name; use letters, digits, _ and -")
    base = _SHM if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None
    parent = Path(tempfile.mkdtemp(prefix="packager-secrets-", dir=base))  # 0700
    staged = parent / "secrets"
    staged.mkdir(mode=0o700)
    handed = owner is not None and _can_hand_over(owner[0])
    for name, value in values.items():
        path = staged / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value)
        if handed and owner is not None:
            os.chown(path, *owner)
        elif not handed:
            path.chmod(0o644)
    if handed and owner is not None:
        os.chown(staged, *owner)
    else:
        staged.chmod(0o755)  # the 0700 parent keeps other users of this host out
    return staged


def _can_hand_over(uid: int) -> bool:
    return os.geteuid() in (0, uid)


def remove_staged(staged: Path | None) -> None:
    """Delete a staged secrets directory and its private parent (idempotent)."""
    if staged is not None:
        shutil.rmtree(staged.parent, ignore_errors=True)
