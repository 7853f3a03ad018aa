"""docs/custom-training-loop.md: every Python excerpt runs, in order, in one namespace.

The tutorial promises that its code is real. This executes each ```python block
as the page presents it (each block sees what the earlier ones defined) and
fails naming the block that broke.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-training-loop.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def test_the_tutorial_has_its_excerpts():
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 10, len(blocks)  # the tutorial step, eight additions, fit


@pytest.mark.integration
def test_every_excerpt_of_the_tutorial_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything an excerpt writes stays out of the checkout
    namespace: dict = {"__name__": "tutorial"}
    for number, block in enumerate(python_blocks(DOC.read_text()), start=1):
        # a real file per block: tracebacks name it, and AutoGraph can read the source
        source = tmp_path / f"custom_training_loop_block_{number:02d}.py"
        source.write_text(block)
        exec(compile(block, str(source), "exec"), namespace)  # noqa: S102 - by design
    assert namespace["run"].step == namespace["gan"].step == 4
