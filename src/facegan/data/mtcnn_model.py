"""Builds the MTCNN face detector (`mtcnn==1.0.0`) the way facegan runs it.

Shared by `prepare-data` (finding faces in photos) and the face-rate metric
(which may import the data layer, not the other way round).
"""

from __future__ import annotations

from facegan.errors import UserError


def build_mtcnn(purpose: str, device: str | None = None, compiled: bool = True):
    """An `mtcnn.MTCNN` with its three networks (P, R, O) for faces and landmarks.

    Args:
        purpose: what needs it, for the error when mtcnn is missing
            ("prepare-data", "the face-rate metric").
        device: TensorFlow device; None: the first GPU if there is one, else the CPU.
        compiled: run each network as one tf.function. A stage calls its Keras
            network eagerly, layer by layer; as a tf.function the same weights run
            as a graph (about 1.9x faster on CPU, identical scores).
            reduce_retracing: batch and patch counts vary per call, so trace with
            unknown sizes early instead of once per shape.

    Raises:
        UserError: the mtcnn package is not installed.
    """
    try:  # imported here, on first use: it loads TensorFlow
        from mtcnn import MTCNN
        from mtcnn.stages import StageONet, StagePNet, StageRNet
    except ImportError as err:
        raise UserError(f"{purpose} needs the mtcnn package: pip install mtcnn==1.0.0") from err
    import tensorflow as tf

    if device is None:
        device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    stages = [StagePNet(), StageRNet(), StageONet()]  # = "face_and_landmarks_detection"
    if compiled:
        for stage in stages:
            stage._model = tf.function(stage._model, reduce_retracing=True)
    return MTCNN(stages=stages, device=device)
