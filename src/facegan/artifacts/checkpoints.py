"""Checkpoints that are either complete or absent: atomic writes, careful restores.

A checkpoint `ckpt-N` is two files, `ckpt-N.index` and `ckpt-N.data-00000-of-00001`,
listed in the text file `checkpoint` (TensorFlow's own format, so
`tf.train.latest_checkpoint` and TensorBoard read it). A save:

1. writes the files into a staging folder `ckpt-N.partial/` and fsyncs them;
2. renames them into place (the staging folder is on the same file system);
3. rewrites `checkpoint` through a temporary file and an atomic rename.

A process killed at any moment therefore leaves `checkpoint` naming only
complete checkpoints; at worst a staging folder or unlisted files remain, which
the next start clears. A failed write (a full disk, a quota, a size limit)
leaves the previous checkpoints and `checkpoint` as they were and raises
`CheckpointWriteError`, which names the checkpoint that is still good.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf

from facegan.errors import UserError, WriteError, describe_io_error

STATE_FILE = "checkpoint"
_PARTIAL = ".partial"

# What a run's checkpoint holds, by name: the one list. The training state
# (`TrainState.checkpoint`), Keras weights files (`facegan.keras.GAN`) and
# `Run` (which restores one generator by its name) all read it.
NETWORKS = ("generator", "discriminator", "generator_ema")  # generator_ema: when kept
OPTIMIZERS = ("g_optimizer", "d_optimizer")
# ADA's running sums (ada_signs, ada_count) are left out on purpose: at most one
# adjustment interval is lost on a restart, and old checkpoints stay readable.
COUNTERS = ("augment_p", "step", "rollbacks")
CHECKPOINT_PARTS = (*NETWORKS, *OPTIMIZERS, *COUNTERS)


def sampling_network(keeps_average: bool) -> str:
    """The checkpoint name of the generator that samples: its moving average when kept."""
    return "generator_ema" if keeps_average else "generator"


class CheckpointWriteError(WriteError):
    """A checkpoint could not be written; the previous one is intact."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


class CheckpointReadError(UserError):
    """Checkpoints exist, but none of them can be restored.

    Attributes:
        failures: one `ReadFailure` per checkpoint tried, newest first.
    """

    def __init__(self, message: str, failures: Sequence[ReadFailure] = ()):
        super().__init__(message)
        self.failures = list(failures)


class ReadFailure:
    """Why one checkpoint did not restore: its files are damaged, or they do not fit.

    Attributes:
        prefix: the checkpoint (a path prefix).
        reason: the first line of the error, at most 200 characters.
        damaged: True when the files themselves fail to read (cut, zeroed, a
            bad checksum); False when they read back whole but do not hold
            the objects asked for (another config, another network).
    """

    def __init__(self, prefix: str, reason: str, damaged: bool):
        self.prefix, self.reason, self.damaged = prefix, reason, damaged

    @property
    def name(self) -> str:
        return Path(self.prefix).name

    def describe(self) -> str:
        """ "ckpt-4 is damaged (...)" or "ckpt-4 does not match (...)"."""
        return f"{self.name} {'is damaged' if self.damaged else 'does not match'} ({self.reason})"


class CheckpointStore:
    """Keeps the last `keep` checkpoints of one `tf.train.Checkpoint` in a folder.

    Args:
        checkpoint: what to save and restore.
        directory: the folder (created on first save).
        keep: how many checkpoints to keep; older ones are deleted after a
            newer one is safely in place.
        name: the file name prefix (`ckpt`).
        chief: False on a non-chief worker of a multi-worker cluster: it reads
            the chief's checkpoints but never changes the folder; its share of a
            save goes to a temporary folder that is deleted at once (TensorFlow
            wants every worker to take part in a save).
        variables: the checkpoint's variables; when given, a save refuses
            (AssertionError) to write any non-finite value.
    """

    def __init__(
        self,
        checkpoint: tf.train.Checkpoint,
        directory: Path,
        keep: int,
        name: str = "ckpt",
        chief: bool = True,
        variables: Sequence[tf.Variable] | None = None,
    ):
        assert keep >= 1
        self.checkpoint = checkpoint
        # Absolute: TensorFlow joins relative state-file entries onto the folder it
        # was given, and a relative folder would then be joined twice.
        self.directory = Path(directory).absolute()
        self.keep = keep
        self.name = name
        self.chief = chief
        self.variables = variables
        self._pattern = re.compile(rf"^{re.escape(name)}-(\d+)\.index$")

    # -- what is on disk ----------------------------------------------------
    def listed(self) -> list[str]:
        """Prefixes listed in the state file, oldest first (absolute paths)."""
        state = tf.train.get_checkpoint_state(str(self.directory)) if self._has_state() else None
        if state is None:
            return []
        return [self._absolute(p) for p in state.all_model_checkpoint_paths]

    @property
    def latest(self) -> str | None:
        """The newest listed checkpoint (a path prefix), or None."""
        listed = self.listed()
        return listed[-1] if listed else None

    def step_of(self, prefix: str) -> int:
        return int(prefix.rsplit("-", 1)[1])

    # -- saving -------------------------------------------------------------
    def save(self, number: int) -> str:
        """Writes `<name>-<number>` atomically and returns its prefix.

        Raises:
            AssertionError: a variable is not finite (the train step's guard makes
                this unreachable; a checkpoint is never written from non-finite state).
            CheckpointWriteError: the write failed (e.g. no space left); nothing
                listed before was touched.
        """
        if self.variables is not None and not variables_finite(self.variables):
            raise AssertionError("refusing to write a checkpoint with non-finite values")
        if not self.chief:
            with tempfile.TemporaryDirectory(prefix="facegan-worker-checkpoint-") as scratch:
                self.checkpoint.write(os.path.join(scratch, "ckpt"))
            return str(self.directory / f"{self.name}-{number}")
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{self.name}-{number}"
        if str(final) in self.listed():
            # Already saved at this number (e.g. a stop request right after a scheduled
            # save). Never replace a listed checkpoint in place: a failure halfway
            # would leave it damaged.
            return str(final)
        stage = self.directory / f"{self.name}-{number}{_PARTIAL}"
        shutil.rmtree(stage, ignore_errors=True)
        try:
            written = Path(self.checkpoint.write(str(stage / "ckpt")))
            staged = sorted(stage.iterdir())
            for path in staged:
                _fsync_file(path)
            # Publish the data file(s) before the index: an index is what makes a
            # prefix look complete to TensorFlow.
            for path in sorted(staged, key=lambda p: p.name.endswith(".index")):
                os.replace(path, final.with_name(final.name + path.name[len(written.name) :]))
            _fsync_dir(self.directory)
            listed = sorted([*self.listed(), str(final)], key=self.step_of)
            dropped, kept = listed[: -self.keep], listed[-self.keep :]
            self._write_state(kept)
        except (OSError, tf.errors.OpError) as err:
            self._remove_unlisted(number)
            raise self._write_error(number, err) from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        for prefix in dropped:
            self._delete_files(Path(prefix))
        return str(final)

    def _write_error(self, number: int, err: Exception) -> CheckpointWriteError:
        code, reason = describe_io_error(err)
        latest = self.latest
        kept = (
            f"the previous checkpoint {Path(latest).name} is intact"
            if latest
            else "no earlier checkpoint exists"
        )
        return CheckpointWriteError(
            f"could not write checkpoint {self.name}-{number} in {str(self.directory)!r}: "
            f"{reason}; {kept}",
            code,
        )

    def _write_state(self, prefixes: list[str]) -> None:
        prefixes = sorted(prefixes, key=self.step_of)
        lines = [f'model_checkpoint_path: "{Path(prefixes[-1]).name}"']
        lines += [f'all_model_checkpoint_paths: "{Path(p).name}"' for p in prefixes]
        partial = self.directory / f"{STATE_FILE}{_PARTIAL}"
        with open(partial, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, self.directory / STATE_FILE)
        _fsync_dir(self.directory)

    # -- restoring ----------------------------------------------------------
    def restore_latest(self, log=None) -> str | None:
        """Restores the newest checkpoint that reads back, and returns its prefix.

        Tries the listed checkpoints newest first, then any complete
        `<name>-N` files that the state file does not list (a lost or damaged
        state file must not send a run back to step 0). A checkpoint that fails
        to read (damaged by a disk fault) is reported through `log` and skipped.
        Leftovers of interrupted saves are removed first (chief only: a
        non-chief store never changes the folder).

        Returns:
            The restored prefix, or None when the folder holds no checkpoint.

        Raises:
            CheckpointReadError: checkpoints exist but none can be read (a run
                is never silently restarted from scratch over them); its
                `failures` say which were damaged and which did not match.
        """
        if self.chief:
            self.clean_leftovers()
        candidates = set(self.listed()) | set(self._complete_on_disk())
        failures = []
        for prefix in sorted(candidates, key=self.step_of, reverse=True):
            failure = self.restore(prefix)
            if failure is not None:
                failures.append(failure)
                if log is not None:
                    log.warning(
                        "checkpoint %s could not be read (%s); trying an older one",
                        failure.name,
                        failure.describe(),
                    )
                continue
            if prefix != self.latest and self.chief:
                self._write_state(
                    [p for p in self.listed() if self.step_of(p) < self.step_of(prefix)] + [prefix]
                )
            return prefix
        if failures:
            raise CheckpointReadError(
                f"none of the {len(failures)} checkpoint(s) in {str(self.directory)!r} can be "
                f"read (newest: {failures[0].describe()}); nothing was changed",
                failures,
            )
        return None

    def restore(self, prefix: str) -> ReadFailure | None:
        """Restores `prefix` into the checkpoint's objects; None on success, else why not.

        Every object must get its value from the file; values in the file that
        no object asks for (a generator restored alone from a training
        checkpoint) are expected.
        """
        try:
            status = self.checkpoint.read(prefix)
            status.expect_partial()
            status.assert_existing_objects_matched()
        except Exception as err:  # a damaged file fails in many ways (IndexError too)
            _mute_unrestored_warnings(err)
            damage = checkpoint_damage(prefix)
            return ReadFailure(prefix, damage or _first_line(err), damage is not None)
        return None

    def clean_leftovers(self) -> None:
        """Removes what interrupted saves left: staging folders, a temporary state file.

        Complete but unlisted checkpoints are kept: `restore_latest` can still
        use them if the state file was lost.
        """
        if not self.directory.is_dir():
            return
        for stage in self.directory.glob(f"{self.name}-*{_PARTIAL}"):
            shutil.rmtree(stage, ignore_errors=True)
        (self.directory / f"{STATE_FILE}{_PARTIAL}").unlink(missing_ok=True)

    def _complete_on_disk(self) -> list[str]:
        found = []
        if not self.directory.is_dir():
            return found
        for path in self.directory.iterdir():
            match = self._pattern.match(path.name)
            prefix = path.with_suffix("")
            if match and list(self.directory.glob(f"{prefix.name}.data-*")):
                found.append(str(prefix))
        return found

    # -- helpers --------------------------------------------------------------
    def _remove_unlisted(self, number: int) -> None:
        final = self.directory / f"{self.name}-{number}"
        if str(final) not in self.listed():
            self._delete_files(final)

    def _delete_files(self, prefix: Path) -> None:
        for path in prefix.parent.glob(f"{prefix.name}.*"):
            if path.name.startswith(prefix.name + ".index") or path.name.startswith(
                prefix.name + ".data-"
            ):
                path.unlink(missing_ok=True)

    def _has_state(self) -> bool:
        return (self.directory / STATE_FILE).is_file()

    def _absolute(self, prefix: str) -> str:
        return prefix if os.path.isabs(prefix) else str(self.directory / prefix)


def checkpoint_damage(prefix: str) -> str | None:
    """Why the files of checkpoint `prefix` do not read back, whatever they hold; None if whole.

    Reads every tensor (the reader checks each one's checksum), so a cut, a
    zeroed or a changed file is told apart from a checkpoint of another network.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as err:  # DataLossError, IndexError, OpError: all mean damage here
        return _first_line(err)
    return None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _mute_unrestored_warnings(err: BaseException) -> None:
    """Stops a failed read from logging every value it left unrestored.

    TensorFlow's restore coordinator logs one WARNING line per unrestored
    value (dozens) when it is garbage-collected, unless `expect_partial` was
    set; a read that raises never hands back the status to set it on. The
    coordinator is a local of the failed call, so it is found in its frames.
    The failure itself is reported once, by the caller.
    """
    for frame, _ in traceback.walk_tb(err.__traceback__):
        for value in frame.f_locals.values():
            if hasattr(value, "expect_partial_attr"):
                value.expect_partial = True


def variables_finite(checkpoint_variables: Sequence[tf.Variable]) -> bool:
    """True if every floating-point variable holds only finite values."""
    for variable in checkpoint_variables:
        # Keras variables name their dtype as a string; tf.Variables as a DType.
        if tf.as_dtype(variable.dtype).is_floating and not bool(
            tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(variable)))
        ):
            return False
    return True


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # A rename is durable only once its directory is synced (POSIX); not every
    # platform lets a directory be opened, which is harmless to skip.
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
