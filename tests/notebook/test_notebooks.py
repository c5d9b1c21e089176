"""docs/notebooks run top to bottom in a real Jupyter kernel (ipykernel, driven by nbclient).

So `packager.load().predict()` is tested where users call it: inside the kernel's running event
loop. The outputs are checked against the same packages run here, not just for "no error".
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

import packager

NOTEBOOKS = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
CLEANUP = "if 'server' in globals() and server.poll() is None:\n    server.kill()\n    server.wait()"

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def execute(path: Path) -> dict[str, Any]:
    """Run every cell of the notebook at `path` in a fresh kernel; the cells by id, with outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(path.parent)}}
    )
    cells = list(notebook.cells)
    notebook.cells.append(nbformat.v4.new_code_cell(CLEANUP))
    with client.setup_kernel():
        try:
            for index, cell in enumerate(cells):
                client.execute_cell(cell, index)
        finally:  # a failed cell must not leave `pkg serve` running
            client.execute_cell(notebook.cells[-1], len(cells))
    return {cell.id: cell for cell in cells}


def text(cell: Any) -> str:
    """What a code cell showed as text: its result's text/plain and anything it printed."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif "data" in output and "text/plain" in output.data:
            parts.append(output.data["text/plain"])
    return "".join(parts)


def image(cell: Any) -> bytes:
    (png,) = [base64.b64decode(o.data["image/png"]) for o in cell.outputs if "image/png" in o.get("data", {})]
    return png


def test_the_committed_notebook_is_valid_and_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_quickstart_runs_top_to_bottom_with_the_expected_outputs() -> None:
    with packager.load(NOTEBOOKS / "painter") as painter, packager.load(NOTEBOOKS / "words") as words:
        png = painter.predict(color="#2e86de", size=48)
        green = painter.predict(color="#10ac84", size=24)
        streamed = "".join(words.predict(text="tokens arrive one by one"))
    cells = execute(NOTEBOOKS / "quickstart.ipynb")
    for cell in cells.values():
        assert not [o for o in cell.get("outputs", []) if o.output_type == "error"], cell.id
    assert "running=True" in text(cells["loop"])  # the cells below ran inside a running event loop
    assert text(cells["load"]) == "<ModelHandle 'painter' device='cpu'>"
    assert text(cells["schema"]) == "['color', 'size']"
    assert text(cells["predict"]) == repr((len(png), png[:8]))
    assert image(cells["image"]) == png
    assert text(cells["apredict"]) == "True"
    assert text(cells["stream"]) == streamed
    assert text(cells["serve"]).startswith("<RemoteModel 'painter' at http://127.0.0.1:")
    assert text(cells["remote"]) == "True"
    assert image(cells["remote-image"]) == green
    assert text(cells["stop"]).strip() in {"0", "-15"}  # the server's exit code after SIGTERM
