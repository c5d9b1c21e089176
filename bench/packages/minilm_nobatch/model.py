"""library/minilm with predict_batch taken away: every request gets its own forward pass.

The serving benchmark compares this with library/minilm to show what dynamic
batching buys. Everything else (spec, weights, code) is the same.
"""

import importlib.util
from pathlib import Path

_FILE = Path(__file__).resolve().parents[3] / "library" / "minilm" / "model.py"
_spec = importlib.util.spec_from_file_location("bench_minilm_model", _FILE)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


class Model(_module.Model):
    predict_batch = None  # packager batches only models whose predict_batch is callable
