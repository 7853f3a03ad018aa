"""docs/custom-training-loop.md: every Python excerpt runs, in order, in one namespace.

The tutorial promises that its code is real. This executes each ```python block
as the page presents it (each block sees what the earlier ones defined) and
fails naming the block that broke. A block that starts with `# A program of its
own` (the distributed loop, which sets up two logical CPUs before TensorFlow
starts) runs alone in a fresh Python process, as a reader would run it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-training-loop.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_OWN_PROCESS = "# A program of its own"


def python_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def programs(text: str) -> list[str]:
    """The blocks that run in a process of their own."""
    return [block for block in python_blocks(text) if block.startswith(_OWN_PROCESS)]


def test_the_tutorial_has_its_excerpts():
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 10, len(blocks)  # the tutorial step, eight additions, fit


@pytest.mark.integration
def test_every_excerpt_of_the_tutorial_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything an excerpt writes stays out of the checkout
    namespace: dict = {"__name__": "tutorial"}
    for number, block in enumerate(python_blocks(DOC.read_text()), start=1):
        if block.startswith(_OWN_PROCESS):
            continue  # test_the_distributed_loop_runs_on_two_logical_cpus
        # a real file per block: tracebacks name it, and AutoGraph can read the source
        source = tmp_path / f"custom_training_loop_block_{number:02d}.py"
        source.write_text(block)
        exec(compile(block, str(source), "exec"), namespace)  # noqa: S102 - by design
    assert namespace["run"].step == namespace["gan"].step == 4


@pytest.mark.integration
def test_the_distributed_loop_runs_on_two_logical_cpus(tmp_path):
    (program,) = programs(DOC.read_text())
    for call in (
        "strategy.scope()",
        "experimental_distribute_dataset",
        "strategy.run(",
        "strategy.reduce(",
        "synchronized=True",
    ):
        assert call in program, call
    source = tmp_path / "distributed_loop.py"
    source.write_text(program)
    result = subprocess.run(
        [sys.executable, str(source)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("2 replicas: G ")
