"""library/clip with predict_batch taken away: every request gets its own forward pass.

bench/catalogue.py compares this with library/clip at c=32 to show what dynamic batching
buys. Everything else (spec, weights, code) is the same.
"""

import importlib.util
import sys
from pathlib import Path

_FILE = Path(__file__).resolve().parents[3] / "library" / "clip" / "model.py"
_spec = importlib.util.spec_from_file_location("bench_clip_model", _FILE)
_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _module  # pydantic resolves the Request's annotations through it
_spec.loader.exec_module(_module)

Request = _module.Request
Response = _module.Response


class Model(_module.Model):
    predict_batch = None  # packager batches only models whose predict_batch is callable

    def predict(self, inputs: Request) -> Response:
        return _module.Model.predict_batch(self, [inputs])[0]
