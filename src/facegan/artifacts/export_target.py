"""Where an export goes, checked without TensorFlow (the command line asks first).

Nothing is ever overwritten: an existing file, or an existing SavedModel
version folder, is refused with one line that says what to do instead.
"""

from __future__ import annotations

from pathlib import Path

from facegan.artifacts.rundir import RunDirError

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
        return
    if out.suffix != SUFFIXES[fmt]:
        raise ExportError(
            f"--out for --format {fmt} must be a {SUFFIXES[fmt]} file; received {str(out)!r}"
        )
    refuse_existing(out)


def refuse_existing(path: Path, hint: str = "choose another --out") -> None:
    if path.exists():
        raise ExportError(
            f"{str(path)!r} already exists; facegan never overwrites an export: {hint}"
        )
