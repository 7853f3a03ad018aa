"""Finding faces in a photo: MTCNN detections as `Face`s, in the photo's pixels."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

# MTCNN reports candidates above this O-Net score (its own default); those between
# it and --min-score are counted as "low score".
CANDIDATE_SCORE = 0.8
# MTCNN's image pyramid starts at faces of this size (its default, and its floor:
# the P-Net window is 12 px).
MIN_DETECTABLE_FACE = 20


@dataclasses.dataclass(frozen=True)
class Face:
    """One MTCNN detection, in the photo's pixels.

    Attributes:
        box: float [4], (x1, y1, x2, y2).
        score: O-Net confidence in [0, 1].
        landmarks: float [5, 2], in `align.LANDMARKS` order.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> float:
        """The longer side of the box: what `min_face` is compared with."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceFinder:
    """MTCNN (the `mtcnn` package), built on first use, returning `Face`s per photo.

    The three networks run as `tf.function` graphs, as in
    `facegan.metrics.face_rate` (same weights and scores, about twice as fast on
    a CPU as mtcnn's eager calls).

    Args:
        min_face: the smallest face (box side, photo pixels) worth finding; faces
            down to half of it (at least 20 px) are looked for, so faces a little too
            small are still counted, and much smaller ones cost nothing.
        candidate_score: O-Net scores below this are not reported at all.
        device: TensorFlow device; None: the first GPU if there is one, else the CPU.
    """

    def __init__(
        self,
        min_face: float = MIN_DETECTABLE_FACE,
        candidate_score: float = CANDIDATE_SCORE,
        device: str | None = None,
    ):
        self.pyramid_start = max(float(MIN_DETECTABLE_FACE), min_face / 2.0)
        self.candidate_score = candidate_score
        self._device = device
        self._mtcnn = None

    def _model(self):
        if self._mtcnn is None:
            from facegan.data.mtcnn_model import build_mtcnn

            self._mtcnn = build_mtcnn("prepare-data", self._device, compiled=True)
        return self._mtcnn

    def find(self, photo: Image.Image | np.ndarray) -> list[Face]:
        """Faces in one RGB photo (PIL, or uint8 [H, W, 3]), left to right, in its pixels."""
        image = photo if isinstance(photo, Image.Image) else Image.fromarray(np.asarray(photo))
        # MTCNN 1.0.0 sizes its pyramid for min_face_size = 20 whatever it is told (a
        # larger value makes its last levels smaller than P-Net's window, an error that
        # it reports as "no faces"), so larger minimum faces are found by shrinking the
        # photo instead: the same pyramid, and smaller faces cost nothing.
        shrink = MIN_DETECTABLE_FACE / self.pyramid_start
        size = (max(1, round(image.width * shrink)), max(1, round(image.height * shrink)))
        if size != image.size:
            image = image.resize(size, Image.Resampling.BILINEAR)  # antialiased when shrinking
        if min(size) < 12:  # below P-Net's window: MTCNN cannot look
            return []
        rows = self._model().detect_faces(
            [np.asarray(image.convert("RGB"), dtype=np.float32)],
            output_type="numpy",
            box_format="xyxy",
            postprocess=False,
            threshold_onet=self.candidate_score,
        )
        # [faces, (image, x1, y1, x2, y2, score, 5 landmark x, 5 landmark y)]
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        back = np.array(
            [photo_side / side for photo_side, side in zip(_size_of(photo), size)]
        )  # detection px -> photo px, per axis
        faces = [
            Face(
                box=row[1:5] * np.tile(back, 2),
                score=float(row[5]),
                landmarks=np.stack([row[6:11], row[11:16]], axis=1) * back,
            )
            for row in rows
        ]
        return sorted(faces, key=lambda f: (f.box[0] + f.box[2], f.box[1] + f.box[3]))


def _size_of(photo: Image.Image | np.ndarray) -> tuple[int, int]:
    """(width, height)."""
    if isinstance(photo, Image.Image):
        return photo.size
    return photo.shape[1], photo.shape[0]
