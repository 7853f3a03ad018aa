"""`facegan prepare-data`: a folder (or zip) of photos -> a folder of face crops to train on.

For every photo, largest first (read with the same sources and decoder as
training, so EXIF orientation, 16-bit, palette and CMYK images, zip safety and
size limits all behave the same):

1. a byte-identical copy of a photo already read is skipped;
2. MTCNN finds faces: a box, a confidence and five landmarks each;
3. a face is dropped when its confidence is below `min_score`, when the longer
   side of its box (in the photo's pixels, after EXIF rotation) is below
   `min_face`, or when it duplicates a face already kept (see
   `face_signature`);
4. a kept face is warped to R x R (an FFHQ-style aligned crop with `align`,
   else an upright square around the box, see `facegan.data.align`) and
   written as `<photo stem>-<k>.png`, k counting the photo's detections from
   left to right; one JSON line per kept face goes to `manifest.jsonl`.

The output folder must not exist or be empty: nothing is ever overwritten.
Imports TensorFlow (through mtcnn) only when the first photo is searched.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from facegan.config import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE
from facegan.data import align
from facegan.data.decode import check_size, to_channels
from facegan.data.face_finder import CANDIDATE_SCORE, Face, FaceFinder
from facegan.data.problems import describe_error, display_name
from facegan.data.sources import ImageSource, open_source
from facegan.errors import UserError
from facegan.progress import progress as line_or_bar

MANIFEST = "manifest.jsonl"
MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024
DEFAULT_MIN_SCORE = 0.9
DEFAULT_BOX_SCALE = 1.3
# Duplicates are found at two levels (measured on AT&T, docs/prepare-data.md):
# - a photo whose 16x16 grayscale thumbnail correlates >= PHOTO_DUPLICATE with one
#   already read is a resized or re-encoded copy of it and is not searched: 100 of
#   100 copies (0.7-2.0x, JPEG q70-95) correlate >= 0.9975 with their original,
#   while the closest two different shots of one person (40 people x 10 shots)
#   reach 0.9927;
# - a face whose signature correlates >= DEFAULT_DUPLICATE_CORRELATION with a kept
#   face's (the same face cut from two different photos). At the old 0.95 this
#   dropped 30 % of AT&T's photos (different shots of one person look alike at
#   16 px); at 0.995 it drops 0.3 %.
PHOTO_DUPLICATE = 0.996
DEFAULT_DUPLICATE_CORRELATION = 0.995
_SIGNATURE_SIDE = 16


@dataclasses.dataclass
class PrepareSummary:
    """What `prepare_faces` did, for the summary line and scripts.

    Attributes:
        out: the output folder.
        photos: photos decoded and searched.
        unreadable: (name, reason) of files that could not be read or decoded.
        identical: byte-identical copies of a photo already read (not searched).
        copies: resized or re-encoded copies of a photo already read (not searched).
        found: faces MTCNN reported (score >= min(0.8, min_score)).
        kept: faces written.
        low_score, small, duplicate: faces dropped for each reason (each face once,
            checked in that order).
        bad_landmarks: faces whose landmarks give no crop (the eyes coincide).
        min_score, min_face: the thresholds used.
    """

    out: Path
    photos: int = 0
    unreadable: list = dataclasses.field(default_factory=list)
    identical: int = 0
    copies: int = 0
    found: int = 0
    kept: int = 0
    low_score: int = 0
    small: int = 0
    duplicate: int = 0
    bad_landmarks: int = 0
    min_score: float = DEFAULT_MIN_SCORE
    min_face: float = 0.0

    def line(self) -> str:
        """The one-line summary the command prints."""
        read = f"read {self.photos} photo(s)"
        notes = []
        if self.unreadable:
            notes.append(f"{len(self.unreadable)} unreadable")
        if self.identical:
            notes.append(f"{self.identical} identical copy(ies) skipped")
        if self.copies:
            notes.append(f"{self.copies} resized or re-encoded copy(ies) skipped")
        if notes:
            read += f" ({', '.join(notes)})"
        dropped = (
            f"dropped {self.low_score} low score (< {self.min_score:g}), {self.small} small "
            f"(box < {self.min_face:g} px), {self.duplicate} duplicate"
        )
        if self.bad_landmarks:
            dropped += f", {self.bad_landmarks} with unusable landmarks"
        return f"{read}; found {self.found} face(s), kept {self.kept} -> {self.out}; {dropped}"

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["out"] = str(self.out)
        out["unreadable"] = [{"name": display_name(n), "reason": r} for n, r in self.unreadable]
        return out


# ------------------------------------------------------------------ duplicates


def face_signature(face: Image.Image) -> np.ndarray:
    """A face crop's 16 x 16 grayscale thumbnail, standardised to unit length.

    Zero mean and unit norm: the dot product of two signatures is the Pearson
    correlation of the thumbnails, blind to brightness and contrast changes,
    and at 16 px blind to re-encoding noise and to the pixel or two that a
    re-detected face's crop shifts by.

    Returns:
        float32 [256]; all zeros for a flat image.
    """
    small = face.convert("L").resize((_SIGNATURE_SIDE, _SIGNATURE_SIDE), Image.Resampling.BOX)
    values = np.asarray(small, dtype=np.float64).reshape(-1)
    values -= values.mean()
    norm = np.linalg.norm(values)
    return (values / norm if norm > 1e-6 else values * 0.0).astype(np.float32)


class _Kept:
    """Signatures of the faces kept so far, for the duplicate test."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._rows = np.zeros((0, _SIGNATURE_SIDE**2), np.float32)
        self._count = 0

    def is_duplicate(self, signature: np.ndarray) -> bool:
        if self._count == 0:
            return False
        # float32 rounding: a face's signature with itself gives 1 - 1e-7, not 1
        return bool((self._rows[: self._count] @ signature).max() >= self.threshold - 1e-5)

    def add(self, signature: np.ndarray) -> None:
        if self._count == len(self._rows):  # grow by doubling: amortised O(1) per face
            grown = np.zeros((max(64, 2 * len(self._rows)), self._rows.shape[1]), np.float32)
            grown[: self._count] = self._rows[: self._count]
            self._rows = grown
        self._rows[self._count] = signature
        self._count += 1


# ------------------------------------------------------------------ names


_UNSAFE = re.compile(r"[^\w.+=,@-]")


def output_stems(names: list[str]) -> list[str]:
    """A file-name stem per source name, unique across the source.

    The photo's own stem (`25_0_1_2017.jpg.chip` for `25_0_1_2017.jpg.chip.jpg`,
    so name-encoded labels survive); where two photos share a stem (`s1/1.pgm`,
    `s2/1.pgm`), their folder path is kept too (`s1_1`, `s2_1`). Characters
    other than letters, digits and `._-+=,@` become `_`.
    """

    def clean(text: str) -> str:
        text = "".join(
            ch if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF else "_" for ch in text
        )
        return _UNSAFE.sub("_", text)[-150:].lstrip(".") or "photo"

    plain = [clean(Path(name).stem) for name in names]
    counts = collections.Counter(plain)
    repeated = {stem for stem, count in counts.items() if count > 1}
    stems, used = [], set()
    for name, stem in zip(names, plain):
        if stem in repeated:
            stem = clean(str(Path(name).with_suffix("")).replace("/", "_").replace("\\", "_"))
        unique, n = stem, 1
        while unique in used:  # paths that still collide after cleaning
            n += 1
            unique = f"{stem}_{n}"
        used.add(unique)
        stems.append(unique)
    return stems


# ------------------------------------------------------------------ the command


def check_output_folder(out: str | Path, source: str | Path | None = None) -> Path:
    """Refuses an output that exists and is not an empty folder, or lies inside the source.

    Raises:
        UserError: with the reason (the CLI exits with code 2).
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {display_name(str(out))!r} is a file; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise UserError(
            f"--out {display_name(str(out))!r} is not empty; prepare-data never "
            f"overwrites: give a new or empty folder"
        )
    if source is not None and Path(source).is_dir():
        inside = Path(os.path.realpath(path))
        root = Path(os.path.realpath(source))
        if inside == root or root in inside.parents:
            raise UserError(
                f"--out {display_name(str(out))!r} is inside SRC; its crops would be "
                f"read as photos next time: choose a folder outside it"
            )
    return path


def prepare_faces(
    source: str | Path,
    out: str | Path,
    resolution: int,
    *,
    align_faces: bool = False,
    min_score: float = DEFAULT_MIN_SCORE,
    min_face: float | None = None,
    box_scale: float = DEFAULT_BOX_SCALE,
    duplicate_correlation: float = DEFAULT_DUPLICATE_CORRELATION,
    finder: FaceFinder | None = None,
    progress: bool = False,
    on_skip: Callable[[str, str], None] | None = None,
) -> PrepareSummary:
    """Finds the faces in every photo of `source` and writes them to `out` as R x R PNGs.

    Args:
        source: a folder of photos (searched recursively) or a .zip of them.
        out: a folder that does not exist or is empty.
        resolution: the side R of the written faces, 16 to 1024.
        align_faces: FFHQ-style aligned crops (eyes level, same place in every
            image); False: upright squares around the detection boxes.
        min_score: the smallest MTCNN confidence kept, in [0, 1].
        min_face: the smallest face kept, as the longer side of its detection
            box in the photo's pixels; default R / 2.
        box_scale: without alignment, the crop side over the box's longer side.
        duplicate_correlation: a face whose signature correlates at least this
            much with a kept face's is a duplicate (1.0: exact copies only).
        finder: a `FaceFinder` to reuse; default a new one.
        progress: show a progress bar on stderr.
        on_skip: called with (name, reason) for every unreadable file.

    Returns:
        The counts (see `PrepareSummary`).

    Raises:
        UserError: a bad argument, a missing source, or an output folder in use.
    """
    check_arguments(resolution, min_score, box_scale, duplicate_correlation)
    min_face = resolution / 2.0 if min_face is None else float(min_face)
    photos, out_dir = _open_paths(str(source), out)
    finder = finder or FaceFinder(
        min_face=min_face, candidate_score=min(CANDIDATE_SCORE, min_score)
    )

    summary = PrepareSummary(out=out_dir, min_score=min_score, min_face=min_face)
    for name, _, reason in photos.problems:  # refused while listing (links, zip slips)
        _unreadable(summary, on_skip, name, reason)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = output_stems(photos.names)
    kept, photo_kept = _Kept(duplicate_correlation), _Kept(PHOTO_DUPLICATE)
    digests: set[str] = set()
    bar = line_or_bar(len(photos), "finding faces", "photo", show=progress)
    with open(out_dir / MANIFEST, "x", encoding="utf-8") as manifest:
        for index in _largest_first(photos):
            if bar is not None:
                bar.update(1)
            found = _detect(photos, index, finder, digests, photo_kept, summary, on_skip)
            if found is None:
                continue
            photo, faces = found
            for k, face in enumerate(faces):
                row = _keep_face(
                    photo,
                    face,
                    k,
                    stems[index],
                    photos.names[index],
                    out_dir,
                    resolution,
                    align_faces,
                    box_scale,
                    kept,
                    summary,
                )
                if row is not None:
                    manifest.write(json.dumps(row) + "\n")
                    manifest.flush()  # a run stopped half-way leaves a manifest that matches
    if bar is not None:
        bar.close()
    return summary


def _open_paths(spec: str, out: str | Path) -> tuple[ImageSource, Path]:
    """The photos of SRC and the checked output folder (not yet created)."""
    path = Path(spec).expanduser()
    if not path.exists():  # checked here: open_source's message would name data.source
        raise UserError(
            f"SRC {display_name(spec)!r} does not exist; give a folder of photos or a .zip of them"
        )
    if not path.is_dir() and path.suffix.lower() != ".zip":
        raise UserError(
            f"SRC must be a folder of photos or a .zip of them; received the file "
            f"{display_name(spec)!r}"
        )
    out_dir = check_output_folder(out, path)
    return open_source(str(path)), out_dir


def check_arguments(
    resolution: int, min_score: float, box_scale: float, duplicate_correlation: float
) -> None:
    """Refuses out-of-range settings (the CLI checks them before TensorFlow loads).

    Raises:
        UserError: naming the flag, the value and what is allowed.
    """
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise UserError(
            f"--resolution must be from {MIN_RESOLUTION} to {MAX_RESOLUTION}; received {resolution}"
        )
    if not 0.0 <= min_score <= 1.0:
        raise UserError(f"--min-score must be from 0 to 1; received {min_score}")
    if not 0.5 <= box_scale <= 4.0:
        raise UserError(f"--box-scale must be from 0.5 to 4; received {box_scale}")
    if not 0.0 < duplicate_correlation <= 1.0:
        raise UserError(
            f"--duplicate-correlation must be above 0 and at most 1; "
            f"received {duplicate_correlation}"
        )


def _largest_first(photos: ImageSource) -> list[int]:
    """Photo indices by pixel count, largest first (ties: by name), from the headers only.

    Faces are kept first come, first served, and a copy of a photo (a resized
    export, a thumbnail) yields the same faces again: the largest copy goes first,
    so the sharpest version of each face is the one kept. A file whose header
    cannot be read sorts last and fails properly when it is read.
    """

    def pixels(index: int) -> int:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with photos.open(index) as image:
                    return image.width * image.height
        except Exception:
            return 0

    sizes = [pixels(index) for index in range(len(photos))]
    return sorted(range(len(photos)), key=lambda i: (-sizes[i], photos.names[i]))


def _read_photo(photos: ImageSource, index: int) -> tuple[Image.Image, str]:
    """Decodes photo `index` upright as RGB; returns it and the sha256 of its bytes."""
    data = photos.read_bytes(index)
    digest = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings():
        # Pillow warns about large images before check_size can refuse them clearly.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as image:
            check_size(image, DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIZE)
            image.load()  # a truncated file fails here
            return to_channels(image, 3), digest  # EXIF orientation, modes, alpha handled


def _unreadable(
    summary: PrepareSummary, on_skip: Callable[[str, str], None] | None, name: str, reason: str
) -> None:
    summary.unreadable.append((name, reason))
    if on_skip:
        on_skip(display_name(name), reason)


def _detect(
    photos: ImageSource,
    index: int,
    finder: FaceFinder,
    digests: set[str],
    photo_kept: _Kept,
    summary: PrepareSummary,
    on_skip: Callable[[str, str], None] | None,
) -> tuple[Image.Image, list[Face]] | None:
    """The photo and its faces; None for an unreadable photo or a copy of one already read."""
    try:
        photo, digest = _read_photo(photos, index)
    except Exception as err:  # one bad file is skipped, whatever raised it
        _unreadable(summary, on_skip, photos.names[index], describe_error(err)[1])
        return None
    if digest in digests:
        summary.identical += 1
        return None
    digests.add(digest)
    signature = face_signature(photo)  # of the whole photo: a resized copy frames it alike
    if photo_kept.is_duplicate(signature):
        summary.copies += 1
        return None
    photo_kept.add(signature)
    summary.photos += 1
    faces = finder.find(photo)
    summary.found += len(faces)
    return photo, faces


def _keep_face(
    photo: Image.Image,
    face: Face,
    k: int,
    stem: str,
    source_name: str,
    out_dir: Path,
    resolution: int,
    align_faces: bool,
    box_scale: float,
    kept: _Kept,
    summary: PrepareSummary,
) -> dict | None:
    """Checks one face, writes it if it passes; returns its manifest row or None."""
    if face.score < summary.min_score:
        summary.low_score += 1
        return None
    if face.size < summary.min_face:
        summary.small += 1
        return None
    try:
        crop = (
            align.aligned_crop(face.landmarks)
            if align_faces
            else align.box_crop(face.box, box_scale)
        )
    except ValueError:
        summary.bad_landmarks += 1
        return None
    matrix = crop.transform(resolution)
    image = align.warp(photo, matrix, resolution)
    signature = face_signature(image)
    if kept.is_duplicate(signature):
        summary.duplicate += 1
        return None
    kept.add(signature)
    file_name = f"{stem}-{k}.png"
    _write_png(image, out_dir / file_name)
    summary.kept += 1
    return {
        "file": file_name,
        "source": display_name(source_name),
        "face": k,
        "score": round(face.score, 5),
        "box": _rounded(face.box),
        "landmarks": {
            name: _rounded(point) for name, point in zip(align.LANDMARKS, face.landmarks)
        },
        "aligned": align_faces,
        "resolution": resolution,
        "transform": [_rounded(r, 6) for r in matrix],
        "output_landmarks": {
            name: _rounded(point)
            for name, point in zip(align.LANDMARKS, align.apply_transform(matrix, face.landmarks))
        },
        "outside": round(align.outside_fraction(photo.size, matrix, resolution), 3),
        "photo_size": list(photo.size),
    }


def _rounded(values, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in values]


def _write_png(image: Image.Image, path: Path) -> None:
    """Writes a PNG; "x" mode: an existing file is never replaced."""
    with open(path, "xb") as file:
        image.save(file, format="PNG")
