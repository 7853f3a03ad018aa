"""Evaluation while a run trains: FID and face rate every `train.eval_every` steps.

The training loop calls an `InTrainingEval` at its evaluation steps. It keeps
the best-FID checkpoint in checkpoints/best/, with best.json beside it
({"step", "fid"}), so a resumed run keeps comparing against the best FID so
far. The FID network is only ever used here to measure, never by training.
"""

from __future__ import annotations

import json
import logging
import time

from facegan.artifacts.checkpoints import CheckpointStore
from facegan.artifacts.logs import MetricsLog
from facegan.artifacts.sampler import Sampler
from facegan.config import Config
from facegan.evaluate.evaluator import Evaluator, ImageSet
from facegan.models import latents_for_seed
from facegan.seeds import PickPart, Stream


class InTrainingEval:
    """FID and face rate of the current generator, and the best-FID checkpoint.

    The same `eval_num` latents are used at every evaluation, so successive
    numbers differ only by the weights.

    Args:
        evaluator: holds the Inception network and the face detector.
        config: the run's config.
        sampler: renders the run's sampling generator (its moving average).
        best: where the best checkpoint is kept (a store of the run's state, keep=1).
        images: the training set (`TrainingImages`): the real side of FID.
        log: the run's logger.
    """

    METRICS = ("fid", "face_rate")

    def __init__(
        self,
        evaluator: Evaluator,
        config: Config,
        sampler: Sampler,
        best: CheckpointStore,
        images,
        log: logging.Logger,
    ):
        self.evaluator, self.sampler, self.log = evaluator, sampler, log
        train = config.train
        real = images.sample_pixels(train.eval_num, train.seed, PickPart.EVAL_REAL)
        self.real = ImageSet.real(real, f"{len(real)} training images")
        self.latents = latents_for_seed(
            train.eval_num, config.model.latent_dim, train.seed, Stream.EVAL_LATENT
        )
        self.labels = images.sample_labels(train.eval_num, train.seed, PickPart.EVAL_LABELS)
        self.best, self.best_dir = best, best.directory
        self.best_file = self.best_dir / "best.json"
        self.best_fid = (
            json.loads(self.best_file.read_text())["fid"]
            if self.best_file.exists()
            else float("inf")
        )

    def __call__(self, step: int, metrics: MetricsLog) -> None:
        pixels = self.sampler.images(self.latents, labels=self.labels)
        fake = ImageSet(pixels, f"{len(pixels)} samples at step {step}")
        results = self.evaluator.compare(fake, self.real, self.METRICS)
        metrics.scalars(
            step,
            {"eval/fid": results["fid"], "eval/face_rate": results["face_rate"]},
            event="evaluate",
            time=time.time(),
        )
        improved = results["fid"] < self.best_fid
        if improved:
            self.best_fid = results["fid"]
            self.best.save(step)
            partial = self.best_file.with_name("best.json.partial")
            partial.write_text(json.dumps({"step": step, "fid": self.best_fid}) + "\n")
            partial.replace(self.best_file)
        self.log.info(
            "eval at step %d: FID %.2f, face rate %.3f%s",
            step,
            results["fid"],
            results["face_rate"],
            "  (best so far)" if improved else "",
        )
