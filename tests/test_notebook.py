"""examples/quickstart.ipynb: stored without outputs, and it runs end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_stored_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert len(code) >= 6
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)


@pytest.mark.integration
def test_the_notebook_runs_end_to_end(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from facegan.evaluate import Evaluator
    from facegan.metrics.inception import WeightsNotFound

    try:
        Evaluator().check_weights()
    except WeightsNotFound as err:
        pytest.skip(f"the notebook's FID cell needs the Inception weights ({err})")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    began = time.monotonic()
    client.execute()  # raises CellExecutionError naming the cell that failed
    print(f"notebook executed in {time.monotonic() - began:.0f} s")
    outputs = [cell.get("outputs", []) for cell in notebook.cells if cell.cell_type == "code"]
    images = [o for cell in outputs for o in cell if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the sample grid, the faces by seed, the walk
    text = "".join(o.get("text", "") for cell in outputs for o in cell)
    assert "trained to step 300" in text and "'fid':" in text and "exported to" in text
