"""Rules of the package's structure that a reader relies on (docs/architecture.md).

Code outside `facegan.data` knows training data only through the
`TrainingImages` protocol: it never names the two kinds, and `facegan train` and
`facegan.keras.GAN` set a run up through the same function.
"""

from __future__ import annotations

import re
from pathlib import Path

import facegan

PACKAGE = Path(facegan.__file__).parent
CONCRETE_KINDS = re.compile(r"\b(DecodedImages|PackedImages|open_packed|is_packed)\b")


def _modules_outside(folder: str):
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] != folder:
            yield path


def test_no_code_outside_the_data_package_names_a_kind_of_training_data():
    # cli/inspect_data reports a pack's dataset.json without opening it as training data
    allowed = {PACKAGE / "cli" / "inspect_data.py"}
    found = [
        f"{path.relative_to(PACKAGE)}: {match.group(0)}"
        for path in _modules_outside("data")
        if path not in allowed
        for match in CONCRETE_KINDS.finditer(path.read_text())
    ]
    assert found == []


def test_both_front_ends_set_a_run_up_through_one_function():
    for front_end in ("training/api.py", "keras/model.py"):
        assert "set_up_run(" in (PACKAGE / front_end).read_text(), front_end
