"""One entry's load time against reading its weight bytes, in a fresh process (bench/catalogue.py runs it).

    .venv/bin/python bench/_catalogue_load.py ENTRY DEVICE REPEATS   # prints one JSON line

The libraries the entry imports (torch, transformers, diffusers, whisper, packager) are imported
first, and one load runs untimed, so the timed loads measure loading weights and building the
model, not Python imports. The weight files are read once before timing too: both sides run
on a warm page cache (dropping it would slow every other process on a shared machine).
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _catalogue_work import read_bytes, weight_files, weights_dir
from _common import ROOT

PACKAGES = {
    "llama": ("llama-2-7b-chat", ["transformers"]),
    "whisper": ("whisper", ["whisper"]),
    "sd": ("stable-diffusion", ["transformers", "diffusers"]),
    "clip": ("clip", ["transformers"]),
}


def main() -> None:
    entry, device, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    folder = weights_dir(entry)
    name, modules = PACKAGES[entry]
    for module in ["torch", *modules]:
        importlib.import_module(module)
    import packager

    files = weight_files(folder)
    size = read_bytes(files)

    def load() -> float:
        started = time.perf_counter()
        handle = packager.load(ROOT / "library" / name, weights_dir=folder, device=device)
        seconds = time.perf_counter() - started
        handle.close()
        del handle
        gc.collect()
        return seconds

    def read() -> float:
        started = time.perf_counter()
        read_bytes(files)
        return time.perf_counter() - started

    first = load()
    loads, reads = [], []
    for _ in range(repeats):
        reads.append(read())
        loads.append(load())
    print(json.dumps({"bytes": size, "files": len(files), "first": first, "loads": loads, "reads": reads}))


if __name__ == "__main__":
    main()
