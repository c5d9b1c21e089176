"""`pkg export`: a packager package written out in another tool's format (build side only).

Reading those formats is runtime (packager/_interop: an image serves a Truss directory);
writing them is not, so it lives here, outside the image.
"""

from __future__ import annotations

from packager._export._truss import export_truss

__all__ = ["export_truss"]
