"""What a build prints, read as it streams: its steps (BuildKit's or the classic builder's), which
ran and which came from the cache, and each step's last lines, for the failure message and the
progress line."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from packager._build._hints import hint

TAIL = 5
_BUILDKIT_STEP = re.compile(r"^#(\d+) (\[.+)$")
_BUILDKIT_LINE = re.compile(r"^#(\d+) (\d+\.\d+ )?(.*)$")  # with a time: the step's output
_NOISE = ("━", " ---> ", "Removing intermediate container")  # progress bars, the classic's bookkeeping
_CLASSIC_STEP = re.compile(r"^Step (\d+/\d+) : (.+)$")


@dataclass
class Steps:
    """The steps of a build's output and each one's last lines, BuildKit's or the classic's."""

    names: dict[str, str] = field(default_factory=dict)
    logs: dict[str, deque[str]] = field(default_factory=dict)
    failed: str | None = None
    current: str = ""
    last: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL))
    cached: set[str] = field(default_factory=set)  # steps taken from the cache
    running: str = ""  # the step whose output came last, for the progress line

    def feed(self, line: str) -> None:
        if not line.strip():
            return
        self.last.append(line)
        classic = _CLASSIC_STEP.match(line)
        if classic:
            self.current = self.running = line
            self.names[line] = f"[{classic.group(1)}] {classic.group(2)}"
            self.logs[line] = deque(maxlen=TAIL)
            return
        if line.strip() == "---> Using cache":
            self.cached.add(self.current)
            return
        step = _BUILDKIT_STEP.match(line)
        if step and step.group(1) not in self.names:
            self.names[step.group(1)] = step.group(2)
            self.running = step.group(1)
            return
        match = _BUILDKIT_LINE.match(line)
        if match and not match.group(2):  # a status line: DONE, CACHED, sha256:..., ERROR: ...
            if match.group(3).startswith("ERROR"):
                self.failed = match.group(1)
            elif match.group(3) == "CACHED":
                self.cached.add(match.group(1))
            return
        key, text = (match.group(1), match.group(3)) if match else (self.current, line)
        if not any(noise in text for noise in _NOISE):
            self.logs.setdefault(key, deque(maxlen=TAIL)).append(text)

    def steps(self) -> list[str]:
        """The build's own steps seen so far (not BuildKit's internal ones), in order."""
        return [key for key, name in self.names.items() if not name.startswith("[internal]")]

    def now(self) -> str:
        """The running step, as a person reads it."""
        return _short(self.names.get(self.running, "starting"))

    def failure(self, tag: str, code: int) -> str:
        key = self.failed or self.current
        name = self.names.get(key)
        tail: Iterable[str] = self.logs.get(key) or self.last
        where = f"at step {_short(name)}" if name else f"(docker exit code {code})"
        lines = [line.strip() for line in tail]
        advice = hint([*lines, *self.last])
        return f"building {tag} failed {where}; its log ends:\n" + "\n".join(
            [*lines, *([f"hint: {advice}"] if advice else [])]
        )


def _short(step: str) -> str:
    """A step as a person reads it: no stage name, no BuildKit mounts, at most 100 characters."""
    text = " ".join(word for word in step.split() if not word.startswith("--mount="))
    text = re.sub(r"^\[stage-\d+ ", "[", text)
    return text if len(text) <= 100 else text[:97] + "..."
