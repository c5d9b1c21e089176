"""Shared helpers for the benchmark scripts: rows, the Markdown table, README markers."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PACKAGES = BENCH / "packages"
README = BENCH / "README.md"


@dataclass
class Row:
    """One line of a results table: a measured value against a same-run baseline and a target."""

    name: str
    unit: str
    measured: float
    baseline: float | None
    target: str
    passed: bool | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.measured / self.baseline


def fmt(value: float | None) -> str:
    """A number with as many digits as it deserves."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| benchmark | measured | baseline | ratio | target | result | note |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        result = "-" if r.passed is None else ("PASS" if r.passed else "**FAIL**")
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(
            f"| {r.name} | {fmt(r.measured)} {r.unit} | {fmt(r.baseline)} | {ratio} "
            f"| {r.target} | {result} | {r.note} |"
        )
    return "\n".join(lines)


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD")
    py = platform.python_version()
    return f"{os.cpu_count()} CPUs ({cpu}), Python {py}, commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def write_section(section: str, body: str) -> None:
    """Replace the text between this section's markers in bench/README.md."""
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    text = README.read_text(encoding="utf-8")
    if start not in text or end not in text:
        sys.exit(f"bench/README.md lacks the markers {start} ... {end}; add them where the table goes")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{body}\n{end}{tail}", encoding="utf-8")
    print(f"wrote the {section} table to {README.relative_to(ROOT)}")
