"""The evaluator: generated (or real) images against real ones, through the FID
Inception network and the MTCNN face detector.

Every metric is a pure function in `facegan.metrics`; this module only gathers
the images, extracts (and caches) features, and reports. Images reach the
network as: uint8 -> bilinear resize to 299 -> /128 - 1 (see
`facegan.metrics.inception.preprocess`).

Real-image features are cached under the user's cache directory, keyed by a
hash of the decoded pixels (so by content, resolution and count) and of the
network's weights: change one photo and the cache misses.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from facegan.data.opening import real_images
from facegan.metrics import metric_rows
from facegan.metrics.registry import (
    FACE_DETECTOR,
    GENERATED_FEATURES,
    GENERATED_PIXELS,
    REAL_FEATURES,
    TRAIN_FEATURES,
)


class ImageSet:
    """uint8 images [N, H, W, C] and where they came from.

    Args:
        pixels: the images, or None when `load` will produce them on first use
            (a cached real set then never needs decoding).
        description: for tables and logs.
        content_key: identifies the content for caching (None: never cached,
            e.g. generated images).
        load: a function returning the pixels, called at most once.
    """

    def __init__(
        self,
        pixels: np.ndarray | None,
        description: str,
        content_key: str | None = None,
        load: Callable[[], np.ndarray] | None = None,
    ):
        assert pixels is not None or load is not None, "an ImageSet needs pixels or a loader"
        self._pixels, self._load = pixels, load
        self.description, self.content_key = description, content_key

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self._load()
        return self._pixels

    @classmethod
    def real(cls, pixels: np.ndarray, description: str) -> ImageSet:
        """A real image set, cached by a hash of its pixels (content, size and count)."""
        digest = hashlib.sha256()
        digest.update(repr(pixels.shape).encode())
        digest.update(np.ascontiguousarray(pixels).tobytes())
        return cls(pixels, description, digest.hexdigest()[:32])


def real_image_set(
    spec: str,
    resolution: int,
    channels: int,
    num: int | None,
    seed: int = 0,
    progress: bool = False,
    skip: int = 0,
) -> ImageSet:
    """A dataset at `resolution`, `num` images of it (all if None), decoded lazily.

    The pick is seeded (`facegan.data.opening.real_images`); `skip` drops its
    first ones, so two calls with the same seed and skip=0 / skip=num give
    disjoint sets. The cache key names the files' content and these settings,
    so a cached set is never decoded.
    """
    real = real_images(spec, resolution, channels, num, seed, skip, progress)
    return ImageSet(None, real.description, real.key, real.load)


class Evaluator:
    """Computes metrics; loads the Inception network and the face detector once.

    Args:
        weights: explicit Inception weights path (else the standard search).
        cache_dir: where real-image features are cached (None: no caching).
        progress: show progress bars for feature extraction.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        cache_dir: Path | None = None,
        progress: bool = False,
    ):
        self._weights = weights
        self._inception = None
        self._detector = None
        self._network: str | None = None
        self.cache_dir = cache_dir
        self.progress = progress
        self.cache_hits = 0

    # -- lazily built heavy objects ---------------------------------------
    @property
    def inception(self):
        if self._inception is None:
            from facegan.metrics.inception import load_fid_inception

            self._inception = load_fid_inception(self._weights)
        return self._inception

    @property
    def detector(self):
        if self._detector is None:
            from facegan.metrics.face_rate import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    def check_weights(self) -> None:
        """Fails early (WeightsNotFound) if no Inception weights can be found."""
        _ = self.inception

    # -- features ---------------------------------------------------------
    def features(self, images: ImageSet) -> np.ndarray:
        """Inception pool3 features [N, 2048] (cached for real image sets)."""
        from facegan.metrics.inception import extract_features

        path = self._cache_path(images)
        if path is not None and path.exists():
            try:
                with np.load(path) as cached:
                    self.cache_hits += 1
                    return cached["features"]
            except (OSError, ValueError, KeyError):
                pass  # a torn or foreign file: recompute and replace it
        features = extract_features(self.inception, images.pixels, progress=self.progress)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial.npz")
            np.savez(partial, features=features)
            partial.replace(path)
        return features

    def _cache_path(self, images: ImageSet) -> Path | None:
        if self.cache_dir is None or images.content_key is None:
            return None
        return self.cache_dir / "features" / f"{images.content_key}-{self._network_id()}.npz"

    def _network_id(self) -> str:
        """A short hash of the network's first and last weights: other weights, other cache."""
        if self._network is None:
            digest = hashlib.sha256()
            for weight in self.inception.weights[:2] + self.inception.weights[-2:]:
                digest.update(np.asarray(weight.numpy()).tobytes())
            self._network = digest.hexdigest()[:12]
        return self._network

    # -- metrics ------------------------------------------------------------
    def compare(
        self,
        generated: ImageSet,
        real: ImageSet,
        metrics: Sequence[str],
        train: ImageSet | None = None,
    ) -> dict:
        """Metrics of `generated` against `real`; memorization against `train` (default `real`).

        Every metric is a row of `facegan.metrics.METRIC_TABLE`, computed in its
        order. Returns a flat dict of numbers, plus `memorization_pairs` (list of
        (generated index, train index)) when memorization was asked for.
        """
        rows = metric_rows(metrics)
        timings: dict[str, float] = {}
        features: dict[str, np.ndarray] = {}
        if any(row.uses_features for row in rows):
            began = time.perf_counter()
            features[GENERATED_FEATURES] = self.features(generated)
            features[REAL_FEATURES] = self.features(real)
            timings["features_s"] = time.perf_counter() - began
            counts = len(features[GENERATED_FEATURES]), len(features[REAL_FEATURES])
        else:
            counts = len(generated.pixels), len(real.pixels)
        results: dict = {"num_generated": counts[0], "num_real": counts[1]}

        def inputs(name: str):
            if name == TRAIN_FEATURES:
                return features[REAL_FEATURES] if train is None else self.features(train)
            if name == GENERATED_PIXELS:
                return generated.pixels
            if name == FACE_DETECTOR:
                return self.detector
            return features[name]

        for row in rows:
            began = time.perf_counter()
            results.update(row.compute(inputs))
            if not row.uses_features:  # feature metrics share features_s; others time themselves
                timings[f"{row.name}_s"] = time.perf_counter() - began
        results.update(timings)
        return results
