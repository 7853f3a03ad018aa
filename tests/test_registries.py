"""The config's lists of choices agree with the registries that implement them.

`config` stays TensorFlow-free, so it keeps its own lists of names; these tests
make a new loss or architecture fail loudly until both places name it.
"""

from facegan.config import ARCHITECTURES, LOSSES


def test_config_losses_are_the_registered_ones():
    from facegan.losses import LOSSES as REGISTERED

    assert LOSSES == tuple(REGISTERED)


def test_config_architectures_are_the_registered_ones():
    from facegan.models import _BUILDERS

    assert ARCHITECTURES == tuple(_BUILDERS)


def test_every_exit_code_comes_from_errors():
    import signal

    from facegan.errors import ExitCode, Interrupted, UserError, WriteError
    from facegan.training.distribute import WorkerLost
    from facegan.training.health import Diverged

    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 5, 130, 143]
    assert (
        (UserError.exit_code, Diverged.exit_code, WriteError.exit_code, WorkerLost.exit_code)
        == (ExitCode.USER_ERROR, ExitCode.DIVERGED, ExitCode.WRITE_FAILED, ExitCode.WORKER_LOST)
        == (2, 3, 4, 5)
    )
    assert Interrupted(".", 1, signal.SIGINT).exit_code == ExitCode.SIGINT == 130
    assert Interrupted(".", None, signal.SIGTERM).exit_code == ExitCode.SIGTERM == 143


def test_errors_stays_a_leaf_module():
    import ast
    from pathlib import Path

    import facegan.errors

    tree = ast.parse(Path(facegan.errors.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("facegan")]


def test_pick_parts_keep_their_numbers():
    # Part of every PICK key: a changed number changes which images a run picks.
    from facegan.seeds import PickPart

    assert {part.name: int(part) for part in PickPart} == {
        "GRID_LABELS": 0,
        "MONITOR": 1,
        "EVAL_REAL": 2,
        "EVAL_LABELS": 3,
    }
    assert PickPart.EVALUATE_REAL == PickPart.KID_SUBSETS == 0  # drawn from seeds of their own
