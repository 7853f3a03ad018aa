"""Distribution checks that need a fresh process (logical CPU devices are fixed at start-up).

    python equivalence_script.py WORKDIR STEPS   train under default and mirrored, compare
    python equivalence_script.py --nan           a NaN batch under mirrored changes nothing

Each prints one JSON object on its last line.
"""

import json
import sys
from pathlib import Path

import numpy as np

from facegan.config import Config, DataConfig, ModelConfig, TrainConfig
from facegan.training.distribute import make_strategy


def tiny(strategy: str, steps: int) -> Config:
    return Config(
        preset="tiny-test",
        data=DataConfig(source="embedded:lfw"),
        model=ModelConfig(resolution=16, width=8, max_width=32, latent_dim=16),
        train=TrainConfig(
            steps=steps,
            batch_size=8,
            seed=3,
            log_every=5,
            sample_every=100,
            checkpoint_every=100,
            strategy=strategy,
            cpu_replicas=2,
        ),
    )


def weights(run_dir: Path) -> dict:
    import tensorflow as tf

    # Keras 3 checkpoints store each trainable weight once, under the optimizer that
    # updates it (`*_optimizer/_trainable_variables/N`); batch-norm statistics sit under
    # the models; Adam's moments under `*_optimizer/_variables/N`. All of them count.
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    return {
        k: reader.get_tensor(k)
        for k in reader.get_variable_to_shape_map()
        if "OBJECT_GRAPH" not in k and reader.get_tensor(k).dtype.kind == "f"
    }


def nan_check() -> None:
    """The skip path of the guarded step (merge_call under MirroredStrategy)."""
    config = tiny("mirrored", 1).with_overrides({"model.channels": "1"})
    mirrored = make_strategy(config)
    import tensorflow as tf

    from facegan.data.pipeline import DecodedImages
    from facegan.training.distribute import distributed_batches
    from facegan.training.state import TrainState
    from facegan.training.steps import make_train_step

    with mirrored.scope():
        state = TrainState.create(config)
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 16, 1), dtype=np.uint8)
    batches = distributed_batches(mirrored, DecodedImages.from_arrays(pixels), 8, 3, False, 0)
    step = make_train_step(state, config, mirrored, batches.element_spec)
    go = tf.constant(0)
    step(next(batches), go)
    variables = state.checkpoint_variables()
    before = [np.array(v.numpy()) for v in variables]
    poisoned = mirrored.run(lambda batch: batch * np.nan, args=(next(batches),))
    out = step(poisoned, go)
    unchanged = all(np.array_equal(a, np.array(v.numpy())) for a, v in zip(before, variables))
    after_nan = [np.array(v.numpy()) for v in variables]
    good = step(next(batches), go)
    moved = any(not np.array_equal(a, np.array(v.numpy())) for a, v in zip(after_nan, variables))
    print(
        json.dumps(
            {
                "skipped": float(out["skipped"]),
                "unchanged": unchanged,
                "next_step_trains": moved and float(good["skipped"]) == 0.0,
                "iterations": int(state.g_optimizer.iterations.numpy()),
            }
        )
    )


def main() -> None:
    if sys.argv[1] == "--nan":
        return nan_check()
    work = Path(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    mirrored = make_strategy(tiny("mirrored", steps))  # first: splits the CPU in two
    import tensorflow as tf

    import facegan

    facegan.train(
        tiny("default", steps),
        work / "default",
        progress=False,
        strategy=tf.distribute.get_strategy(),
    )
    facegan.train(tiny("mirrored", steps), work / "mirrored", progress=False, strategy=mirrored)
    a, b = weights(work / "default"), weights(work / "mirrored")
    relative = {k: float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(a[k]), 1e-12)) for k in a}
    initial = facegan.load(work / "default")  # sanity: training moved the weights
    is_weight = [k for k in a if "_trainable_variables" in k or "moving_" in k]
    print(
        json.dumps(
            {
                "replicas": mirrored.num_replicas_in_sync,
                "same_keys": sorted(a) == sorted(b),
                "weights": len(is_weight),
                "tensors": len(a),
                "max_relative_difference_weights": max(relative[k] for k in is_weight),
                "max_relative_difference_all": max(relative.values()),
                "worst": max(relative, key=relative.get),
                "step": initial.step,
            }
        )
    )


if __name__ == "__main__":
    main()
