"""Checks under two logical CPU replicas (a fresh process: devices are fixed at start-up).

    python replica_slices_script.py labels    per-replica (images, labels) slices of a batch
    python replica_slices_script.py augment   per-replica augmentation == one-device augmentation
    python replica_slices_script.py step-augment
                                              the train step's augmented batches and noise
                                              are the same for 1 and 2 replicas

Each prints one JSON object on its last line.
"""

import json
import sys

import numpy as np

from facegan.config import TrainConfig
from facegan.training.distribute import make_strategy


def check_labels(strategy) -> dict:
    """Replica r's (images, labels) are rows [r*b, (r+1)*b) of the one-device batch."""
    import tensorflow as tf

    from facegan.data.pipeline import DecodedImages, training_dataset
    from facegan.training.distribute import distributed_batches

    count = 20
    pixels = (np.arange(count, dtype=np.uint8) * 10)[:, None, None, None] * np.ones(
        (1, 4, 4, 1), np.uint8
    )  # image i is filled with 10*i
    labels = np.stack([np.arange(count), np.arange(count) % 3], axis=1).astype(np.int32)
    batches = distributed_batches(
        strategy, DecodedImages.from_arrays(pixels, labels), 8, 3, True, 2
    )
    reference = iter(training_dataset(pixels, 8, 3, True, start_step=2, labels=labels))
    same, aligned = True, True
    for _ in range(4):
        images, classes = next(batches)
        local_images = tf.concat(strategy.experimental_local_results(images), axis=0).numpy()
        local_labels = tf.concat(strategy.experimental_local_results(classes), axis=0).numpy()
        want_images, want_labels = (part.numpy() for part in next(reference))
        same &= np.array_equal(local_images, want_images) and np.array_equal(
            local_labels, want_labels
        )
        index = np.rint((local_images[:, 0, 0, 0] + 1) * 255 / 2 / 10).astype(int)
        aligned &= np.array_equal(local_labels[:, 0], index)
    return {
        "replicas": strategy.num_replicas_in_sync,
        "same": bool(same),
        "aligned": bool(aligned),
        "label_shape": list(strategy.experimental_local_results(classes)[0].shape),
        "label_dtype": strategy.experimental_local_results(classes)[0].dtype.name,
    }


def check_augment(strategy) -> dict:
    """Each replica augments its slice exactly as one device augments the global batch."""
    import tensorflow as tf

    from facegan.config import AugmentConfig
    from facegan.training.augment import diff_augment, make_augmenter

    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (8, 16, 16, 3)).astype(np.float32))
    seed = tf.constant([5, 9], tf.int32)
    with strategy.scope():  # p becomes a mirrored variable, as the run's augment_p
        p = tf.Variable(0.0, trainable=False)
    p.assign(0.6)
    ada = make_augmenter(AugmentConfig(kind="ada", ada_kimg=1))
    functions = {
        "diffaugment": lambda x: diff_augment(x, ("color", "translation", "cutout"), seed),
        "ada": lambda x: ada(x, p, seed),
    }
    dataset = tf.data.Dataset.from_tensors(images).unbatch().batch(8)
    distributed = next(iter(strategy.experimental_distribute_dataset(dataset)))
    result = {"replicas": strategy.num_replicas_in_sync, "p": round(float(p.numpy()), 6)}
    for name, function in functions.items():
        one_device = tf.function(function)(images).numpy()
        per_replica = tf.function(lambda x, f=function: strategy.run(f, args=(x,)))(distributed)
        joined = tf.concat(strategy.experimental_local_results(per_replica), axis=0).numpy()
        result[name] = bool(np.allclose(joined, one_device, atol=1e-6))
        # the slices really differ from augmenting each slice as if it were alone
        alone = tf.function(function)(images[:4]).numpy()
        result[name + "_not_trivial"] = not np.allclose(joined[4:], alone, atol=1e-3)
    return result


def _step_draws(strategy, config, images) -> dict:
    """What the train step's parts draw for `images` at step 5: augmented batches and noise."""
    import tensorflow as tf

    from facegan.training.state import TrainState
    from facegan.training.steps import StepParts

    with strategy.scope():
        state = TrainState.create(config)
    state.augment_p.assign(0.6)
    state.step.assign(5)
    parts = StepParts(state, config, strategy)
    dataset = tf.data.Dataset.from_tensors(images).unbatch().batch(len(images))
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))

    def draws(x):
        return {
            "real": parts.augmented(x, 0),
            "fake": parts.augmented(x, 1),
            "noise": parts.noise(0),
        }

    out = tf.function(lambda x: strategy.run(draws, args=(x,)))(batch)
    return {
        k: tf.concat(strategy.experimental_local_results(v), axis=0).numpy() for k, v in out.items()
    }


def check_step_augment(strategy) -> dict:
    """The train step's augmentation and noise are the same for 1 and 2 replicas."""
    import tensorflow as tf

    from facegan.config import Config, ModelConfig, TrainConfig

    images = tf.constant(np.random.default_rng(1).uniform(-1, 1, (8, 16, 16, 3)), tf.float32)
    result = {"replicas": strategy.num_replicas_in_sync}
    for kind in ("diffaugment", "ada"):
        config = Config(
            model=ModelConfig(resolution=16, width=8, max_width=32, latent_dim=16, channels=3),
            train=TrainConfig(batch_size=8, seed=3),
        ).with_overrides({"augment.kind": kind})
        one = _step_draws(tf.distribute.get_strategy(), config, images)
        two = _step_draws(strategy, config, images)
        # float rounding only (different kernels for different batch shapes): <= 1e-5
        result[kind] = {
            name: bool(np.allclose(one[name], two[name], rtol=0, atol=1e-5)) for name in one
        }
        result[kind]["augmented"] = not np.allclose(one["real"], images.numpy(), atol=1e-3)
        result[kind]["real_differs_from_fake"] = not np.allclose(one["real"], one["fake"])
    return result


def main() -> None:
    strategy = make_strategy(TrainConfig(strategy="mirrored", cpu_replicas=2, batch_size=8))
    check = {"labels": check_labels, "augment": check_augment, "step-augment": check_step_augment}[
        sys.argv[1]
    ]
    print(json.dumps(check(strategy)))


if __name__ == "__main__":
    main()
