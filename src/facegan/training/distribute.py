"""Scaling out on `tf.distribute`: which strategy, who writes, how a batch is split.

The training loop is the same under every strategy. What changes:

- `make_strategy` picks the strategy (`train.strategy`). It must run before
  TensorFlow executes anything: MultiWorkerMirroredStrategy configures the
  collective ops of the whole process, and logical CPU devices are fixed when
  the devices initialise.
- `train.batch_size` is the global batch; every replica gets an equal slice
  (`per_replica_batch` refuses a batch that does not divide).
- `distributed_batches` feeds each replica its slice of a step's global batch;
  how the slices are made belongs to the data (`TrainingImages.batches`): in
  memory, exactly the slices of the batch a one-device run sees at that step;
  a pack is streamed, each worker reading its own shard files.
- `cluster_role` reads TF_CONFIG: only the chief writes checkpoints, samples and
  logs; other workers write their share of a checkpoint to a temporary folder
  that is deleted at once (TensorFlow wants every worker to take part in a save).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator

import tensorflow as tf

from facegan.config import Config, TrainConfig
from facegan.data.training_images import TrainingImages
from facegan.errors import ExitCode, UserError


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in a multi-worker cluster (from TF_CONFIG).

    Attributes:
        task_type: "chief" or "worker" (None without TF_CONFIG).
        task_id: index within its type.
        is_chief: writes checkpoints, samples and logs.
        num_workers: processes in the cluster (chief included).
    """

    task_type: str | None = None
    task_id: int = 0
    is_chief: bool = True
    num_workers: int = 1

    def describe(self) -> str:
        if self.task_type is None:
            return "single process"
        return (
            f"{self.task_type} {self.task_id} of {self.num_workers} workers"
            f"{' (chief)' if self.is_chief else ''}"
        )


def cluster_role(environ: dict | None = None) -> Role:
    """Reads TF_CONFIG. The chief is the `chief` task, or worker 0 if there is none.

    Raises:
        UserError: TF_CONFIG is set but is not a valid cluster description.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return Role()
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        task_type, task_id = str(task["type"]), int(task["index"])
        members = {kind: list(addresses) for kind, addresses in cluster.items()}
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(
            f'TF_CONFIG must be JSON like {{"cluster": {{"worker": ["host:port", ...]}}, '
            f'"task": {{"type": "worker", "index": 0}}}}; it is not ({err})'
        ) from None
    if task_type not in members or not 0 <= task_id < len(members[task_type]):
        raise UserError(
            f"TF_CONFIG names task {task_type} {task_id}, which its cluster "
            f"({', '.join(f'{k}: {len(v)}' for k, v in members.items())}) does not have"
        )
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in members
    )
    workers = sum(len(members.get(kind, [])) for kind in ("chief", "worker"))
    return Role(task_type, task_id, is_chief, workers)


def configure_cpu_replicas(count: int) -> None:
    """Splits the first CPU into `count` logical devices (before TensorFlow initialises).

    Raises:
        UserError: the devices were already initialised with another count.
    """
    if count == 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise UserError(
                f"`train.cpu_replicas` = {count} needs a process whose TensorFlow has not yet "
                f"run anything (this one already has {have} CPU device(s)); call "
                f"facegan.make_strategy(config) first, or use the facegan command"
            ) from None


def make_strategy(train: TrainConfig | Config) -> tf.distribute.Strategy:
    """The strategy `train.strategy` names; call it before any other TensorFlow work.

    Args:
        train: the run's `Config`, or its `train` section.

    Raises:
        UserError: the strategy cannot be made here (no TPU, TensorFlow already running
            for multiworker, a bad TF_CONFIG).
    """
    train = train.train if isinstance(train, Config) else train
    configure_cpu_replicas(train.cpu_replicas)
    gpus = tf.config.list_physical_devices("GPU")
    name = train.strategy
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 or train.cpu_replicas > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        devices = [f"/cpu:{i}" for i in range(train.cpu_replicas)]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        cluster_role()  # a malformed TF_CONFIG fails with a clear line, not deep in TF
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:
            if "program startup" not in str(err):
                raise
            raise UserError(
                "`train.strategy` multiworker must be set up before TensorFlow "
                "runs anything: call facegan.make_strategy(config) at the start of "
                "the program, or use the facegan command"
            ) from None
    assert name == "tpu", name
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(
            f"`train.strategy` tpu: no TPU could be reached ({first}); set TPU_NAME "
            f"or run on a TPU VM"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def per_replica_batch(strategy: tf.distribute.Strategy, batch_size: int) -> int:
    """The slice of the global batch each replica trains on.

    Raises:
        UserError: the global batch does not divide evenly.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        lower = batch_size // replicas * replicas
        raise UserError(
            f"`train.batch_size` (the global batch) must be a multiple of the {replicas} "
            f"replicas of the {describe(strategy).split(' with ')[0]}; received {batch_size} (try "
            f"{lower or replicas} or {lower + replicas})"
        )
    return batch_size // replicas


def distributed_batches(
    strategy: tf.distribute.Strategy,
    data: TrainingImages,
    batch_size: int,
    seed: int,
    flip: bool,
    start_step: int,
) -> Iterator:
    """An endless iterator of global batches, each replica holding its slice.

    Args:
        strategy: the distribution strategy.
        data: the training set (in memory or streamed); it decides how its
            pipelines split a batch (`TrainingImages.batches`).
        batch_size: the global batch.
        seed, flip: the data order's seed; mirror images.
        start_step: the step of the first batch.

    With labels each element is a pair `(images, labels)`, labels int32 [b, A]
    per replica, sliced like the images.
    """
    replicas = strategy.num_replicas_in_sync
    per_replica_batch(strategy, batch_size)  # refuses a batch the replicas cannot share

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return data.batches(
            batch_size,
            seed,
            flip,
            start_step,
            replicas=replicas,
            pipeline=context.input_pipeline_id,
            pipelines=context.num_input_pipelines,
        )

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def describe(strategy: tf.distribute.Strategy) -> str:
    """For the log: the strategy and its replicas."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy has no device list: one device
        devices = ()
    names = ", ".join(d.rsplit("/", 1)[-1] if "/" in d else d for d in devices)
    name = _PUBLIC_NAMES.get(type(strategy).__name__, type(strategy).__name__)
    return f"{name} with {strategy.num_replicas_in_sync} replica(s)" + (
        f" ({names})" if names else ""
    )


# tf.distribute's class names for what its documentation calls otherwise.
_PUBLIC_NAMES = {
    "_DefaultDistributionStrategy": "the default strategy",
    "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy",
    "_CollectiveAllReduceStrategyExperimental": "MultiWorkerMirroredStrategy",
}


class WorkerLost(UserError):
    """A worker of a multi-worker job stopped answering; the job must be restarted."""

    exit_code = ExitCode.WORKER_LOST


# What the collective ops raise when a peer has died or the cluster is being torn down.
PEER_FAILURES = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
)
