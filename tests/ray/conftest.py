"""tests/ray: Ray Serve, only ever inside a private network namespace (see ray_netns.py).

The tests that import ray live in tests/ray/netns/ and run in a pytest started inside the
namespace by test_ray_serve.py; the ordinary (outer) run does not collect them.
"""

from __future__ import annotations

import os

collect_ignore = [] if os.environ.get("PACKAGER_RAY_NETNS") == "1" else ["netns"]
