"""Projection: the latent whose image reproduces a given photo (GAN inversion by optimisation).

The photo is prepared exactly as training data is (`facegan.data.decode.prepare`:
centre square crop, Lanczos/bicubic resize to the run's resolution, the run's
channels; then x / 127.5 - 1). The generator is frozen (inference mode: batch
norm uses its moving statistics, stylegan2 its fixed noise images), and one
compiled step moves the latent with Adam (cosine-decayed learning rate) on

    loss = pixel (MSE or L1, images in [-1, 1])
         + prior_weight * (|z| - sqrt(Z))^2 / Z          (z space only)
         + perceptual_weight * feature distance           (optional, off by default)

The prior keeps z on the shell where a Gaussian latent lives, so the face does
not drift into latents the generator never saw. The perceptual term compares
channel-normalised activations of the FID Inception network at `mixed_2`
(35x35x288), LPIPS-like without learned weights; it needs `facegan weights`
and costs an Inception pass per step.

Where it starts and what it moves:
- dcgan, resnet (z space): the best of `candidates` random latents (lowest
  pixel loss), then z itself. `latent.npy` reproduces the photo with
  `run.generate_from_latents`.
- stylegan2 (W space): the average mapping output w over the candidates,
  which is what the generator's tracked `w_avg` estimates (computed here
  because a young run's `w_avg` still lags, and so that it follows the
  labels of a conditional run), broadcast to every synthesis layer.
- conditional runs: attributes fixed with a request ({"gender": "1"}) stay
  fixed; the open ones are chosen together with the starting latent: each
  candidate has its own random labels (`run.labels_for`) and the best pair
  wins. The labels then stay fixed while the latent moves.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from facegan.artifacts.animation import upscale
from facegan.artifacts.images import make_grid, save_png
from facegan.data.decode import prepare
from facegan.data.problems import BadFile, describe_error
from facegan.data.training_images import to_signed_unit
from facegan.errors import UserError
from facegan.models import synthesize

LOSSES = ("mse", "l1")
DEFAULT_LR = 0.05
DEFAULT_PRIOR_WEIGHT = 0.01
PERCEPTUAL_LAYER = "mixed_2"
SIDE_BY_SIDE_SIZE = 256


class ProjectionError(UserError):
    """A projection cannot be made as asked (one line, exit 2)."""


@dataclasses.dataclass
class Projection:
    """The result of `project`.

    Attributes:
        target: uint8 [R, R, C], the photo as the generator sees it.
        reconstruction: uint8 [R, R, C], the generator's image of the result.
        space: "z" (latent) or "w" (stylegan2's mapping output, every layer).
        latent: float32 [1, Z] in z space, else None.
        w: float32 [1, Z] in W space, else None.
        labels: int32 [1, A] class indices for conditional runs, else None.
        label_names: readable classes, e.g. {"gender": "gender 1", "age": "age 20–30"}
            (empty if unconditional).
        loss: the total loss before each step, then after the last ([steps + 1]).
        pixel_loss: the pixel term alongside `loss`.
        mse: mean squared error of the uint8 reconstruction, pixels scaled to [0, 1].
        psnr: 10 log10(1 / mse), in dB.
    """

    target: np.ndarray
    reconstruction: np.ndarray
    space: str
    latent: np.ndarray | None
    w: np.ndarray | None
    labels: np.ndarray | None
    label_names: dict[str, str]
    loss: list[float]
    pixel_loss: list[float]
    mse: float
    psnr: float


def load_target(path: str | Path, resolution: int, channels: int) -> np.ndarray:
    """A photo as training sees it: uint8 [resolution, resolution, channels].

    Raises:
        ProjectionError: the file is missing, not an image, or refused by the
            size checks of training data.
    """
    path = Path(path)
    if not path.is_file():
        raise ProjectionError(f"--image {str(path)!r} does not exist or is not a file")
    try:
        # Pillow warns of (or, past twice its limit, raises on) a huge declared size
        # while opening; the refusal is prepare's size check, or the data readers' line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return prepare(image, resolution, channels)
    except (BadFile, Image.DecompressionBombError) as err:
        raise ProjectionError(f"--image {str(path)!r}: {describe_error(err)[1]}") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ProjectionError(f"--image {str(path)!r} cannot be read as an image: {err}") from None


def mse_psnr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """MSE of two uint8 images with pixels scaled to [0, 1], and PSNR in dB (inf if equal)."""
    mse = float(np.mean(((a.astype(np.float64) - b.astype(np.float64)) / 255.0) ** 2))
    return mse, (math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse))


def project(
    run,
    target: np.ndarray,
    *,
    steps: int = 500,
    seed: int = 0,
    lr: float | None = None,
    request: dict[str, str] | None = None,
    loss: str = "mse",
    candidates: int = 64,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
    perceptual_weight: float = 0.0,
    inception_weights: str | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> Projection:
    """Optimises a latent so that `run`'s generator reproduces `target`.

    Args:
        run: a loaded run (`facegan.load`).
        target: uint8 [R, R, C] at the run's resolution and channels (`load_target`).
        steps: Adam steps (0 keeps the starting point).
        seed: seeds the candidate latents and labels.
        lr: Adam's initial learning rate, cosine-decayed to 0 (default 0.05).
        request: conditional runs: attributes to fix, e.g. {"gender": "1"}.
        loss: pixel loss, "mse" or "l1".
        candidates: random (latent, labels) pairs the start is chosen from.
        prior_weight: weight of the |z| prior (z space only).
        perceptual_weight: weight of the Inception feature term; 0 (default) skips it.
        inception_weights: where the Inception weights are (default: the usual search).
        on_step: called as on_step(step, loss) after every step (progress bars).

    Raises:
        ProjectionError: bad arguments, or a target of the wrong shape.
        UserError: a bad label request; missing Inception weights.
    """
    model = run.config.model
    _check_arguments(target, model, steps, loss, candidates, prior_weight, perceptual_weight, lr)
    space = "w" if model.arch == "stylegan2" else "z"
    target_t = to_signed_unit(tf.constant(target[None]))  # [1, R, R, C]
    pixel_fn = _pixel_loss(loss)
    start, labels, render = _starting_point(
        run, space, target_t, pixel_fn, candidates, seed, request
    )
    variable = keras.Variable(start, dtype="float32", name=f"projected_{space}")
    features = _perceptual_features(inception_weights) if perceptual_weight > 0 else None
    terms = _loss_terms(
        render,
        target_t,
        pixel_fn,
        model.latent_dim,
        prior_weight if space == "z" else 0.0,
        perceptual_weight,
        features,
    )
    step_fn = _make_step(variable, terms, lr or DEFAULT_LR, max(steps, 1))

    history, pixel_history = _optimise(step_fn, lambda: terms(variable), steps, on_step)
    found = variable.numpy()
    labels_np = None if labels is None else labels.numpy()
    if space == "z":
        # Through the same compiled sampler as `generate`: latent.npy gives this image exactly.
        reconstruction = run.generate_from_latents(found, labels=labels_np)[0]
    else:
        reconstruction = run.sampler().images_from_w(found)[0]
    mse, psnr = mse_psnr(reconstruction, target)
    return Projection(
        target=target,
        reconstruction=reconstruction,
        space=space,
        latent=found if space == "z" else None,
        w=found if space == "w" else None,
        labels=labels_np,
        label_names=_label_names(run, labels_np),
        loss=history,
        pixel_loss=pixel_history,
        mse=mse,
        psnr=psnr,
    )


def _optimise(step_fn, final_terms, steps: int, on_step) -> tuple[list[float], list[float]]:
    """Runs `steps` Adam steps: the total and pixel losses of each, then of the result."""
    history, pixel_history = [], []
    for index in range(steps):
        values = step_fn()
        history.append(float(values["loss"]))
        pixel_history.append(float(values["pixel"]))
        if on_step is not None:
            on_step(index, history[-1])
    final = final_terms()
    history.append(float(final["loss"]))
    pixel_history.append(float(final["pixel"]))
    return history, pixel_history


def _starting_point(
    run,
    space: str,
    target_t: tf.Tensor,
    pixel_fn,
    candidates: int,
    seed: int,
    request: dict[str, str] | None,
):
    """(start [1, Z], labels [1, A] or None, render(latent) -> images) from the best candidate.

    z space starts at the best of `candidates` random latents; w space at the
    mean w of those latents (with the best candidate's labels).
    """
    generator = run.generator()
    zs = run.latents(candidates, seed)  # [N, Z]
    label_rows = run.labels_for(candidates, seed, request)  # [N, A] or None
    best = _best_candidate(generator, zs, label_rows, target_t, pixel_fn)
    labels = None if label_rows is None else tf.constant(label_rows[best : best + 1])
    if space == "z":
        return zs[best : best + 1], labels, lambda z: synthesize(generator, z, labels)
    start = _mean_w(generator, zs, None if labels is None else label_rows[[best] * candidates])
    return start, labels, generator.synthesize_from_w


def save_projection(result: Projection, out: str | Path, details: dict | None = None) -> Path:
    """Writes a projection into the new folder `out`; refuses an existing one.

    Files: reconstruction.png (native size), side-by-side.png (target |
    reconstruction, upscaled with nearest neighbours to at least 256 px each),
    latent.npy ([1, Z], z space) or w.npy ([1, Z], W space), labels.npy
    (conditional runs) and progress.json (the loss per step, the final MSE and
    PSNR, and `details`).

    Raises:
        ProjectionError: `out` exists.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise ProjectionError(f"--out {str(out)!r} already exists; choose another folder") from None
    save_png(result.reconstruction, out / "reconstruction.png")
    resolution = result.target.shape[0]
    size = resolution * max(1, math.ceil(SIDE_BY_SIDE_SIZE / resolution))
    pair = upscale(np.stack([result.target, result.reconstruction]), size, "nearest")
    save_png(make_grid(pair, columns=2), out / "side-by-side.png")
    if result.latent is not None:
        np.save(out / "latent.npy", result.latent)
    if result.w is not None:
        np.save(out / "w.npy", result.w)
    if result.labels is not None:
        np.save(out / "labels.npy", result.labels)
    progress = dict(details or {})
    progress.update(
        {
            "space": result.space,
            "labels": result.label_names,
            "steps": len(result.loss) - 1,
            "initial_loss": result.loss[0],
            "final_loss": result.loss[-1],
            "mse": result.mse,
            "psnr": None if math.isinf(result.psnr) else result.psnr,
            "loss": result.loss,
            "pixel_loss": result.pixel_loss,
        }
    )
    (out / "progress.json").write_text(json.dumps(progress, indent=1) + "\n", encoding="utf-8")
    return out


# ------------------------------------------------------------------ pieces


def _check_arguments(
    target, model, steps, loss, candidates, prior_weight, perceptual_weight, lr
) -> None:
    expected = (model.resolution, model.resolution, model.channels)
    if target.shape != expected or target.dtype != np.uint8:
        raise ProjectionError(
            f"the target must be uint8 {list(expected)}; received "
            f"{target.dtype} {list(target.shape)}"
        )
    if steps < 0:
        raise ProjectionError(f"steps must be 0 or more; received {steps}")
    if loss not in LOSSES:
        raise ProjectionError(
            f"the pixel loss must be one of {', '.join(LOSSES)}; received {loss!r}"
        )
    if candidates < 1:
        raise ProjectionError(f"candidates must be at least 1; received {candidates}")
    if prior_weight < 0 or perceptual_weight < 0:
        raise ProjectionError(
            f"loss weights must be 0 or more; received prior {prior_weight}, "
            f"perceptual {perceptual_weight}"
        )
    if lr is not None and not lr > 0:
        raise ProjectionError(f"the learning rate must be positive; received {lr}")


def _pixel_loss(kind: str):
    """Per-image pixel loss [B] between images [B, R, R, C] and the target [1, R, R, C]."""
    if kind == "l1":
        return lambda images, target: tf.reduce_mean(tf.abs(images - target), axis=[1, 2, 3])
    return lambda images, target: tf.reduce_mean(tf.square(images - target), axis=[1, 2, 3])


def _best_candidate(generator, zs, label_rows, target, pixel_fn, batch_size: int = 64) -> int:
    """Index of the (latent, labels) pair whose image is closest to the target."""
    losses = []
    for i in range(0, len(zs), batch_size):
        labels = None if label_rows is None else label_rows[i : i + batch_size]
        images = synthesize(generator, tf.constant(zs[i : i + batch_size]), labels)
        losses.append(pixel_fn(images, target).numpy())
    return int(np.argmin(np.concatenate(losses)))


def _mean_w(generator, zs, label_rows) -> np.ndarray:
    """The average mapping output [1, Z] over latents zs (with labels, if conditional)."""
    inputs = tf.constant(zs) if label_rows is None else [tf.constant(zs), tf.constant(label_rows)]
    return tf.reduce_mean(generator.mapping(inputs, training=False), axis=0, keepdims=True).numpy()


def _perceptual_features(weights: str | None):
    """uint8-scaled float images in [-1, 1] [B, R, R, C] -> Inception mixed_2 activations."""
    from facegan.metrics.inception import IMAGE_SIZE, load_fid_inception

    inception = load_fid_inception(weights)
    trunk = keras.Model(inception.input, inception.get_layer(PERCEPTUAL_LAYER).output)

    def features(images):
        # The evaluation preprocessing, on floats so gradients flow: [0, 255] -> 299 -> x/128 - 1.
        x = tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        x = tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear", antialias=False)
        f = trunk(x / 128.0 - 1.0, training=False)  # [B, 35, 35, 288]
        return f * tf.math.rsqrt(tf.reduce_sum(tf.square(f), axis=-1, keepdims=True) + 1e-10)

    return features


def _loss_terms(render, target, pixel_fn, latent_dim, prior_weight, perceptual_weight, features):
    """A function variable -> {"loss", "pixel"} (scalars), the projection objective."""
    target_features = None if features is None else features(target)

    def terms(variable):
        value = tf.convert_to_tensor(variable)
        images = render(value)
        pixel = tf.reduce_mean(pixel_fn(images, target))
        loss = pixel
        if prior_weight > 0:
            radius = tf.norm(value, axis=-1)
            off_shell = tf.square(radius - math.sqrt(latent_dim)) / latent_dim
            loss += prior_weight * tf.reduce_mean(off_shell)
        if target_features is not None:
            distance = tf.reduce_sum(tf.square(features(images) - target_features), axis=-1)
            loss += perceptual_weight * tf.reduce_mean(distance)
        return {"loss": loss, "pixel": pixel}

    return terms


def _make_step(variable, terms, lr: float, steps: int):
    """One compiled Adam step on `variable`; returns the terms before the update."""
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    optimizer.build([variable])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            values = terms(variable)
        gradients = tape.gradient(values["loss"], [variable])
        optimizer.apply_gradients(zip(gradients, [variable]))
        return values

    return step


def _label_names(run, labels: np.ndarray | None) -> dict[str, str]:
    if labels is None:
        return {}
    from facegan.data.labels import schema_from_config

    schema = schema_from_config(run.config.data, run.config.model.label_classes)
    return {
        name: schema.class_names(name)[int(index)] for name, index in zip(schema.names, labels[0])
    }
