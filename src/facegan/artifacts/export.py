"""Export a run's sampling generator for serving: SavedModel, TFLite or Keras.

SavedModel (TensorFlow Serving layout, `NAME/VERSION/`): signatures

    serving_default, from_seed   seed int64 [N]                      -> images uint8 [N, H, W, C]
    from_seed_truncated          seed int64 [N], truncation float32 []
    from_latent                  latent float32 [N, Z]
    from_latent_truncated        latent float32 [N, Z], truncation float32 []

and, for a class-conditional run, `labels` int32 [N, A] in every signature
(class indices, attributes in the order of `facegan.json`). They are the
functions `facegan generate` runs (`artifacts/sampler.py`), so a process that
loads the SavedModel with TensorFlow alone gets the same uint8 images, bit for
bit, for the same latents. `assets.extra/facegan.json` describes the model:
resolution, latent size, the seed convention, the attributes and their class
names, the run and step it came from.

TFLite: `from_latent` and `from_latent_truncated` in one `.tflite` file, with
builtin operations only (seeds would need TensorFlow's random ops through the
Flex delegate; the caller draws latents instead).

Keras: the generator itself as a `.keras` file (latents [N, Z] and labels ->
float images in [-1, 1]), for fine-tuning or embedding in a Keras model;
loading it needs facegan installed (its custom layers).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from facegan.artifacts.export_target import FORMATS, SUFFIXES, ExportError, check_target
from facegan.artifacts.run import Run
from facegan.artifacts.sampler import Sampler
from facegan.errors import describe_io_error, write_error
from facegan.progress import Heartbeat

# Seeds need TensorFlow's stateless random ops, which TFLite runs only through the
# Flex delegate (missing from tf.lite.Interpreter and most mobile runtimes): the
# TFLite model takes latents, drawn by the caller.
TFLITE_SIGNATURES = ("from_latent", "from_latent_truncated")
METADATA_FILE = "facegan.json"

__all__ = ["ExportError", "FORMATS", "default_output", "export", "metadata", "serving_functions"]


def default_output(run: Run, fmt: str) -> Path:
    """Where `export` writes when no --out is given: the run's `export/` folder (for a
    shipped model, `export/` in the current directory)."""
    name = _model_name(run)
    if fmt == "savedmodel":
        return run.outputs / "export" / name
    return run.outputs / "export" / f"{name}-step{run.step}{SUFFIXES[fmt]}"


def export(
    run: Run, fmt: str, out: str | Path | None = None, *, version: int | None = None
) -> Path:
    """Exports `run`'s sampling generator (the EMA one when the run keeps it).

    Args:
        run: a loaded run (`facegan.load`) with at least one checkpoint.
        fmt: "savedmodel", "tflite" or "keras".
        out: savedmodel: the model's folder NAME (the version goes in
            `NAME/VERSION/`); tflite and keras: the file to write. Default:
            `default_output(run, fmt)`.
        version: savedmodel only: the version number (default: the run's step).

    Returns:
        The directory or file written.

    Raises:
        ExportError: an unknown format, an output that already exists (nothing
            is ever overwritten), a version for a non-SavedModel format, an
            output under a file.
        WriteError: the output could not be written (a full disk, a read-only
            folder); nothing is left of it, not even the folders made for it.
    """
    check_target(fmt, out, version)
    run.generator()  # a run with no checkpoint fails here, before anything is written
    out = Path(out) if out is not None else default_output(run, fmt)
    version = version if version is not None else run.step
    check_target(fmt, out, version if fmt == "savedmodel" else None)  # the defaults too
    writers = {
        "savedmodel": lambda: _export_savedmodel(run, out, version),
        "tflite": lambda: _export_tflite(run, out),
        "keras": lambda: _export_keras(run, out),
    }
    made = _missing_folders(out if fmt == "savedmodel" else out.parent)
    # tracing and converting report nothing for a minute or more on a large model:
    # a line now and then keeps a log file from looking hung
    with Heartbeat(f"export: writing {fmt} to {out}"):
        try:
            return writers[fmt]()
        except BaseException as err:
            # Each writer removes its own staging file or folder; the folders made
            # for it go too, so a failed export leaves nothing behind.
            _remove_empty(made)
            if isinstance(err, OSError) or (
                isinstance(err, tf.errors.OpError) and describe_io_error(err)[0] is not None
            ):
                raise write_error(out, err, "nothing was written") from None
            raise


def metadata(run: Run) -> dict:
    """What a serving client needs to call the export: shapes, seeds, attributes."""
    model = run.config.model
    info = {
        "format_version": 1,
        "run": run.name if run.shipped else str(run.directory.resolve()),
        "shipped_model": run.shipped is not None,
        "step": run.step,
        "arch": model.arch,
        "resolution": model.resolution,
        "channels": model.channels,
        "latent_dim": model.latent_dim,
        "sampled_from": "generator_ema" if run.config.train.ema_kimg > 0 else "generator",
        "output": "uint8 images [N, H, W, C], RGB (or grey when channels is 1)",
        "seed": (
            "face of seed s = generator(stateless_normal([latent_dim], seed=[s, 6597069766656]))"
        ),  # facegan.seeds: (s, LATENT, 0)
        "truncation": (
            "psi in [0, 1]; 1 = the full distribution, 0 = the average face "
            "(stylegan2: w toward w_avg; dcgan/resnet: the first features toward "
            "their mean over 256 fixed latents)"
        ),
        "attributes": [],
    }
    if model.conditional:
        from facegan.data.labels import schema_from_config

        schema = schema_from_config(run.config.data, model.label_classes)
        info["attributes"] = [
            {"name": name, "classes": schema.class_names(name)} for name in schema.names
        ]
    return info


def serving_functions(sampler: Sampler) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """The export's signatures: name -> concrete function (see the module docstring)."""
    one = tf.constant(1.0, tf.float32)
    seed = tf.TensorSpec([None], tf.int64, name="seed")
    latent = tf.TensorSpec([None, sampler.latent_dim], tf.float32, name="latent")
    psi = tf.TensorSpec([], tf.float32, name="truncation")
    if sampler.conditional:
        labels = tf.TensorSpec([None, sampler.num_attributes], tf.int32, name="labels")
        from_seed = tf.function(
            lambda seed, labels: sampler.images_from_seed(seed, one, labels),
            input_signature=[seed, labels],
        )
        from_latent = tf.function(
            lambda latent, labels: sampler.images_from_latent(latent, one, labels),
            input_signature=[latent, labels],
        )
        seed_truncated = sampler.images_from_seed.get_concrete_function(seed, psi, labels)
        latent_truncated = sampler.images_from_latent.get_concrete_function(latent, psi, labels)
    else:
        from_seed = tf.function(
            lambda seed: sampler.images_from_seed(seed, one), input_signature=[seed]
        )
        from_latent = tf.function(
            lambda latent: sampler.images_from_latent(latent, one), input_signature=[latent]
        )
        seed_truncated = sampler.images_from_seed.get_concrete_function(seed, psi)
        latent_truncated = sampler.images_from_latent.get_concrete_function(latent, psi)
    from_seed = from_seed.get_concrete_function()
    return {
        "serving_default": from_seed,
        "from_seed": from_seed,
        "from_seed_truncated": seed_truncated,
        "from_latent": from_latent.get_concrete_function(),
        "from_latent_truncated": latent_truncated,
    }


def _export_savedmodel(run: Run, name_dir: Path, version: int) -> Path:
    target = name_dir / str(version)
    name_dir.mkdir(parents=True, exist_ok=True)
    # Written under a name TensorFlow Serving ignores (not a number), then renamed:
    # a server watching NAME/ never sees a half-written version.
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=name_dir))
    try:
        _write_savedmodel(run, staging)
        usual_permissions(staging)  # mkdtemp made it 0700: unreadable to a server's user
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_savedmodel(run: Run, directory: Path) -> None:
    sampler = run.sampler()
    tf.saved_model.save(sampler, str(directory), signatures=serving_functions(sampler))
    extra = directory / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / METADATA_FILE).write_text(json.dumps(metadata(run), indent=2) + "\n", encoding="utf-8")


def _export_tflite(run: Run, out: Path) -> Path:
    functions = serving_functions(run.sampler())
    frozen = {name: _frozen(functions[name]) for name in TFLITE_SIGNATURES}
    with tempfile.TemporaryDirectory(prefix="facegan-export-") as scratch:
        # The converter reads several named signatures only from a SavedModel.
        tf.saved_model.save(tf.Module(), scratch, signatures=frozen)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            scratch, signature_keys=list(TFLITE_SIGNATURES)
        )
        flatbuffer = converter.convert()
    _write_atomically(out, flatbuffer)
    return out


def _frozen(function: tf.types.experimental.ConcreteFunction):
    """`function` with the generator's weights folded in as constants.

    TFLite would otherwise keep them as resource variables, which its
    interpreter leaves uninitialised (all images came out NaN).
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    constant = convert_variables_to_constants_v2(function)
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in constant.inputs]

    def named(*inputs):  # freezing flattens the {"images": ...} output; name it again
        return {"images": tf.nest.flatten(constant(*inputs))[0]}

    return tf.function(named, input_signature=specs).get_concrete_function()


def _export_keras(run: Run, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.stem}.partial.keras")
    try:
        run.generator().save(str(staging))
        os.replace(staging, out)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial")
    try:
        staging.write_bytes(data)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Removes the folders an export made, deepest first, while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (never ours to clear) or never made
            if folder.exists():
                return


def usual_permissions(root: Path) -> None:
    """Folders 0777 and files 0666, less the umask (0755/0644 under umask 022), as `cp` makes.

    TensorFlow Serving often runs as another user: a version folder it cannot
    read is a model it cannot load.
    """
    mask = os.umask(0)
    os.umask(mask)  # reading the umask means setting it; put it back at once
    os.chmod(root, 0o777 & ~mask)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666 & ~mask)


def _model_name(run: Run) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in run.name)
    return name.strip("-.") or "facegan"
