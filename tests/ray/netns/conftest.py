"""Guard and cluster for the tests that import ray: they run inside a private network namespace.

Importing this conftest outside one (any interface but loopback visible) raises, so every test
here fails before ray is imported. `serve_cluster` starts one local Ray cluster (2 CPUs, no
dashboard, a small object store) with Serve's proxy on 127.0.0.1:8000 for the session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ray_netns import RAY_INIT, require_private_netns

require_private_netns()  # before ray is imported: fails every test here outside a namespace

import ray  # noqa: E402
from ray import serve  # noqa: E402


@pytest.fixture(scope="session")
def serve_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray cluster with Serve started; yields its GCS address."""
    temp = tmp_path_factory.mktemp("ray")
    ray.init(**RAY_INIT, _temp_dir=str(temp))
    serve.start(http_options={"host": "127.0.0.1", "port": 8000})
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        serve.shutdown()
        ray.shutdown()
