"""Where an export goes, checked without TensorFlow (the command line asks first).

Nothing is ever overwritten: an existing file, or an existing SavedModel
version folder, is refused with one line that says what to do instead. An
output under a file is refused the same way (exit 2), and one in a folder that
takes no new file (read-only, no permission) as a write failure (exit 4),
before a model is loaded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from facegan.artifacts.rundir import RunDirError
from facegan.errors import write_error

FORMATS = ("savedmodel", "tflite", "keras")
SUFFIXES = {"tflite": ".tflite", "keras": ".keras"}


class ExportError(RunDirError):
    """An export that cannot be written as asked (exit code 2)."""


def check_target(fmt: str, out: str | Path | None, version: int | None) -> None:
    """Refuses a format, an output or a version that `export` could not write.

    Args:
        fmt: "savedmodel", "tflite" or "keras".
        out: the output asked for (None: the default inside the run).
        version: savedmodel only: the version folder (None: the run's step).

    Raises:
        ExportError: one line naming what is wrong and what is allowed.
        WriteError: the output's folder takes no new file (exit 4).
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}; received {fmt!r}")
    if version is not None and fmt != "savedmodel":
        raise ExportError(
            "--version applies to --format savedmodel only (a serving version folder)"
        )
    if version is not None and (not isinstance(version, int) or version < 0):
        raise ExportError(f"--version must be a non-negative integer; received {version!r}")
    if out is None:
        return
    out = Path(out)
    if fmt == "savedmodel":
        if out.exists() and not out.is_dir():
            raise ExportError(
                f"--out {str(out)!r} is a file; a SavedModel needs a folder "
                f"(it writes NAME/VERSION/)"
            )
        if version is not None:
            refuse_existing(
                out / str(version), hint="pass --version N for a new version, or another --out"
            )
        check_writable(out, out)
        return
    if out.suffix != SUFFIXES[fmt]:
        raise ExportError(
            f"--out for --format {fmt} must be a {SUFFIXES[fmt]} file; received {str(out)!r}"
        )
    refuse_existing(out)
    check_writable(out, out.parent)


def refuse_existing(path: Path, hint: str = "choose another --out") -> None:
    if path.exists():
        raise ExportError(
            f"{str(path)!r} already exists; facegan never overwrites an export: {hint}"
        )


def check_writable(out: Path, folder: Path) -> None:
    """Refuses an output whose `folder` could not be made or could not take a new file.

    Asked of the file system itself (an unnamed temporary file in the nearest
    folder that exists), not of the permission bits: root ignores those, and a
    read-only mount says so only when written to.

    Raises:
        ExportError: a part of the path is a file (exit 2).
        WriteError: the folder is read-only or not ours to write (exit 4).
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(
            f"--out {str(out)!r} cannot be made: {str(existing)!r} is a file, not a folder; "
            f"choose another --out"
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise write_error(out, err, "nothing was written") from None
