"""examples/quickstart.ipynb: stored with its (small) outputs, and it runs end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_stored_with_its_outputs_and_small_pictures():
    """It reads as a tutorial without being run: every code cell ran, in order, without error."""
    import base64
    import io

    from PIL import Image

    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert len(code) >= 6
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1))
    outputs = [o for cell in code for o in cell["outputs"]]
    assert all(cell["outputs"] for cell in code)
    assert not [o for o in outputs if o["output_type"] == "error"]
    pictures = [
        Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"])))
        for o in outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(pictures) == 3  # the sample grid, the faces by seed, the walk
    assert NOTEBOOK.stat().st_size < 300_000
    grid, by_seed, walk = (picture.size for picture in pictures)
    assert grid[0] == grid[1] and max(grid) <= 512
    for width, height in (by_seed, walk):  # 1 x N strips at their own aspect ratio
        assert width == 512 and height < width / 5


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
    assert not [o for cell in outputs for o in cell if "absl::InitializeLog" in o.get("text", "")]
    text = "".join(o.get("text", "") for cell in outputs for o in cell)
    assert "trained to step 300" in text and "'fid':" in text and "exported to" in text
