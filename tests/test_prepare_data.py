"""prepare-data: similarity estimation, crop geometry, warping, and the command end to end."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA, tiny_config
from facegan.cli import main
from facegan.data import align
from facegan.data.prepare import MANIFEST, face_signature, output_stems

UTKFACE = SHARED_DATA / "utkface"
ATT = SHARED_DATA / "att-faces"
R = 128  # the small face (box ~50 px) is found but below R/2 = 64


def _similarity(scale: float, degrees: float, shift) -> np.ndarray:
    theta = np.radians(degrees)
    c, s = scale * np.cos(theta), scale * np.sin(theta)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def _eye_angle(points) -> float:
    """Degrees between the eye line and the horizontal."""
    (lx, ly), (rx, ry) = points[0], points[1]
    return abs(float(np.degrees(np.arctan2(ry - ly, rx - lx))))


# ------------------------------------------------------------------ transforms


def test_similarity_recovers_a_known_rotation_scale_and_translation():
    landmarks = np.array([[30.0, 40], [70, 41], [50, 60], [36, 80], [64, 79]])
    known = _similarity(1.7, 23.0, (-12.5, 40.0))
    estimated = align.estimate_similarity(landmarks, align.apply_transform(known, landmarks))
    np.testing.assert_allclose(estimated, known, atol=1e-9)
    assert align.transform_scale(estimated) == pytest.approx(1.7)
    assert align.transform_angle(estimated) == pytest.approx(23.0)


def test_similarity_maps_the_template_points_exactly_and_inverts():
    template = align.FACE_TEMPLATE * 256
    photo_points = align.apply_transform(_similarity(0.6, -40.0, (300, 120)), template)
    matrix = align.estimate_similarity(photo_points, template)
    np.testing.assert_allclose(align.apply_transform(matrix, photo_points), template, atol=1e-9)
    back = align.apply_transform(align.invert_transform(matrix), template)
    np.testing.assert_allclose(back, photo_points, atol=1e-9)


def test_similarity_is_a_least_squares_fit_and_never_reflects():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 100, (5, 2))
    target = align.apply_transform(_similarity(2.0, 10.0, (5, 5)), source) + rng.normal(
        0, 0.5, (5, 2)
    )
    fit = align.estimate_similarity(source, target)
    residual = np.sum((align.apply_transform(fit, source) - target) ** 2)
    for nudge in (
        _similarity(1.01, 0.0, (0, 0)),
        _similarity(1.0, 0.5, (0, 0)),
        _similarity(1.0, 0.0, (0.2, 0)),
    ):  # any nearby similarity fits worse
        composed = nudge[:, :2] @ fit
        composed[:, 2] += nudge[:, 2]
        assert np.sum((align.apply_transform(composed, source) - target) ** 2) > residual
    mirrored = source * [-1, 1]  # a reflection cannot be represented: det stays positive
    assert np.linalg.det(align.estimate_similarity(source, mirrored)[:, :2]) >= 0
    with pytest.raises(ValueError, match="coincide"):
        align.estimate_similarity(np.ones((3, 2)), source[:3])


# ------------------------------------------------------------------ crop geometry


def _frontal_face(eye_distance: float = 40.0, mouth_drop: float = 42.0) -> np.ndarray:
    """Upright landmarks, eyes centred on the origin."""
    half = eye_distance / 2
    return np.array(
        [
            [-half, 0.0],
            [half, 0.0],
            [0, mouth_drop / 2],
            [-0.4 * eye_distance, mouth_drop],
            [0.4 * eye_distance, mouth_drop],
        ]
    )


@pytest.mark.parametrize("degrees", [-15.0, 0.0, 9.0, 30.0])
def test_aligned_crop_levels_the_eyes_and_puts_them_on_the_template(degrees):
    face = align.apply_transform(_similarity(1.5, degrees, (320, 240)), _frontal_face())
    crop = align.aligned_crop(face)
    matrix = crop.transform(R)
    out = align.apply_transform(matrix, face)
    assert _eye_angle(out) < 1e-6
    np.testing.assert_allclose(out[:2], align.FACE_TEMPLATE[:2] * R, atol=0.01 * R)
    np.testing.assert_allclose(out[3:], align.FACE_TEMPLATE[3:] * R, atol=0.01 * R)
    assert crop.side == pytest.approx(4.0 * 1.5 * 40.0)  # the eye distance sets the size
    assert align.transform_angle(matrix) == pytest.approx(-degrees)


def test_aligned_crop_centre_and_size_follow_the_mouth_when_it_is_far():
    face = _frontal_face(eye_distance=20.0, mouth_drop=40.0)  # 3.6 x 40 > 4 x 20
    crop = align.aligned_crop(face)
    assert crop.side == pytest.approx(3.6 * 40.0)
    # the centre moves 10 % of the way from the eyes' midpoint toward the mouth's
    np.testing.assert_allclose(crop.centre, [0.0, 4.0])
    corners = crop.corners()
    np.testing.assert_allclose(corners[0], [-72.0, 4.0 - 72.0])  # upright: top-left first


def test_box_crop_is_an_upright_square_around_the_box():
    crop = align.box_crop((100, 50, 180, 150), scale=1.5)
    assert crop.side == pytest.approx(150.0)
    np.testing.assert_allclose(crop.centre, [140.0, 100.0])
    matrix = crop.transform(R)
    assert align.transform_angle(matrix) == pytest.approx(0.0)
    np.testing.assert_allclose(align.apply_transform(matrix, [140.0, 100.0]), [R / 2, R / 2])


# ------------------------------------------------------------------ warping


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.0])
def test_warp_puts_a_photo_point_where_the_transform_says(scale):
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[146:154, 236:244] = 255  # an 8 px square centred on the point (240, 150)
    photo = Image.fromarray(pixels)
    matrix = _similarity(scale, 20.0, (0, 0))
    moved = align.apply_transform(matrix, [240.0, 150.0])
    matrix[:, 2] += [R / 2, R / 2] - moved  # the dot lands in the middle of the output
    out = np.asarray(align.warp(photo, matrix, R).convert("L"), dtype=np.float64)
    ys, xs = np.mgrid[0:R, 0:R] + 0.5
    weight = out / out.sum()
    assert (weight * xs).sum() == pytest.approx(R / 2, abs=0.6)
    assert (weight * ys).sum() == pytest.approx(R / 2, abs=0.6)


def test_warp_fills_beyond_the_photo_with_a_soft_mirror():
    photo = Image.new("L", (100, 100), 0)
    photo.paste(200, (0, 0, 10, 100))  # a bright band at the left edge
    photo.paste(200, (30, 0, 40, 100))  # and one further in; the median stays 0
    matrix = align.box_crop((-40, 20, 40, 80), scale=1.0).transform(R)  # half off the photo
    out = np.asarray(align.warp(photo, matrix, R), dtype=np.float64)
    assert out.shape == (R, R)
    column = out.mean(axis=0)  # output x = R/2 is the photo's left edge, 1 photo px = R/80
    edge = R // 2
    assert column[edge - 4 : edge + 4].min() > 120  # the band, mirrored just beyond the edge
    assert column[R - R // 8 + 4 : R - 4].min() > 190  # the inner band, untouched
    assert column[: R // 8].max() < 60  # its mirror image far out: faded away
    assert align.outside_fraction(photo.size, matrix, R) == pytest.approx(0.5, abs=0.02)


def test_signature_ignores_brightness_and_finds_copies():
    rng = np.random.default_rng(1)
    face = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((R, R))
    brighter = Image.fromarray(np.clip(np.asarray(face) * 0.8 + 30, 0, 255).astype(np.uint8))
    other = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((R, R))
    assert float(face_signature(face) @ face_signature(brighter)) > 0.99
    assert float(face_signature(face) @ face_signature(other)) < 0.9


def test_output_names_keep_the_stem_and_stay_unique():
    names = ["25_0_1_2017.jpg.chip.jpg", "s1/1.pgm", "s2/1.pgm", "a b/x?.png"]
    assert output_stems(names) == ["25_0_1_2017.jpg.chip", "s1_1", "s2_1", "x_"]


# ------------------------------------------------------------------ end to end


def _background(seed: int) -> Image.Image:
    """640 x 480 grey-ish texture: smooth blotches plus grain."""
    rng = np.random.default_rng(seed)
    blotches = Image.fromarray(rng.integers(70, 180, (6, 8, 3), dtype=np.uint8)).resize(
        (640, 480), Image.Resampling.BICUBIC
    )
    grain = rng.normal(0, 8, (480, 640, 3))
    return Image.fromarray(np.clip(np.asarray(blotches) + grain, 0, 255).astype(np.uint8))


def _paste(canvas: Image.Image, face: Image.Image, centre, height: int, degrees: float) -> None:
    """Pastes `face` scaled to `height`, turned by `degrees` (counter-clockwise), at `centre`."""
    width = round(face.width * height / face.height)
    face = face.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    mask = Image.new("L", face.size, 255).rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    face = face.rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    canvas.paste(
        face, (round(centre[0] - face.width / 2), round(centre[1] - face.height / 2)), mask
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Five files: two group photos (one a resized, re-encoded copy), a portrait with a
    tiny face, a byte-identical copy of the portrait, and a broken file."""
    if not UTKFACE.is_dir() or not ATT.is_dir():
        pytest.skip(f"needs the shared face data: {UTKFACE}, {ATT}")
    utk = sorted(UTKFACE.iterdir())
    root = tmp_path_factory.mktemp("photos")
    group = _background(0)
    _paste(group, Image.open(utk[0]), (170, 210), 230, 12.0)
    _paste(group, Image.open(utk[1]), (470, 250), 190, -10.0)
    group.save(root / "group.jpg", quality=92)
    group.resize((560, 420), Image.Resampling.LANCZOS).save(root / "group-small.jpg", quality=80)
    portrait = _background(1)
    _paste(portrait, Image.open(ATT / "s1" / "1.pgm"), (220, 240), 280, 5.0)
    _paste(portrait, Image.open(utk[2]), (520, 120), 50, 0.0)  # box < R/2: dropped as small
    portrait.save(root / "portrait.png")
    (root / "same-as-portrait.png").write_bytes((root / "portrait.png").read_bytes())
    (root / "broken.jpg").write_bytes(b"not a jpeg at all" * 20)
    (root / "notes.txt").write_text("ignored")
    return root


@pytest.fixture(scope="module")
def prepared(photos, tmp_path_factory):
    """(exit code, output folder, (stdout, stderr)) of one `prepare-data --align` run."""
    out = tmp_path_factory.mktemp("prepared") / "faces"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            [
                "prepare-data",
                str(photos),
                "--out",
                str(out),
                "--resolution",
                str(R),
                "--align",
                "--no-progress",
            ]
        )
    return code, out, (stdout.getvalue(), stderr.getvalue())


def _manifest(out):
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def test_prepare_data_keeps_each_real_face_once_from_the_largest_copy(prepared):
    code, out, (stdout, stderr) = prepared
    assert code == 0, stderr
    rows = _manifest(out)
    assert sorted(row["source"] for row in rows) == ["group.jpg", "group.jpg", "portrait.png"]
    # group-small.jpg, a resized and re-encoded copy of group.jpg, is caught as a photo
    assert (
        "read 2 photo(s) (1 unreadable, 1 identical copy(ies) skipped, 1 resized or "
        "re-encoded copy(ies) skipped)"
    ) in stdout
    assert "kept 3" in stdout and "1 small" in stdout and "0 duplicate" in stdout
    assert "broken.jpg" in stderr


def test_manifest_rows_match_the_files(prepared):
    _, out, _ = prepared
    rows = _manifest(out)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(row["file"] for row in rows)
    for row in rows:
        assert row["file"] == f"{row['source'].rsplit('.', 1)[0]}-{row['face']}.png"
        with Image.open(out / row["file"]) as image:
            assert image.size == (R, R) and image.mode == "RGB"
        assert row["aligned"] and row["score"] >= 0.9
        x1, y1, x2, y2 = row["box"]
        assert max(x2 - x1, y2 - y1) >= R / 2
        matrix = np.array(row["transform"])
        photo_points = np.array([row["landmarks"][name] for name in align.LANDMARKS])
        np.testing.assert_allclose(
            align.apply_transform(matrix, photo_points),
            [row["output_landmarks"][n] for n in align.LANDMARKS],
            atol=0.02,
        )


def test_aligned_faces_have_level_eyes_at_the_template(prepared):
    from facegan.data.prepare import FaceFinder

    _, out, _ = prepared
    rows = _manifest(out)
    finder = FaceFinder()
    for row in rows:
        eyes = np.array([row["output_landmarks"]["left_eye"], row["output_landmarks"]["right_eye"]])
        assert _eye_angle(eyes) < 0.5
        np.testing.assert_allclose(eyes / R, align.FACE_TEMPLATE[:2], atol=0.05)
        # MTCNN, run again on the written face, agrees (within its own landmark noise)
        faces = finder.find(np.asarray(Image.open(out / row["file"]).resize((2 * R, 2 * R))))
        assert faces, row["file"]
        best = max(faces, key=lambda f: f.score)
        redetected = best.landmarks[:2] / (2 * R)
        assert _eye_angle(redetected) < 3.0, (row["file"], redetected)
        np.testing.assert_allclose(redetected, align.FACE_TEMPLATE[:2], atol=0.06)


def test_an_existing_output_is_never_touched(prepared, photos, capsys):
    _, out, _ = prepared
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    assert main(["prepare-data", str(photos), "--out", str(out), "--align"]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before


def test_bad_arguments_exit_2(photos, tmp_path, capsys):
    assert (
        main(["prepare-data", str(photos), "--out", str(tmp_path / "o"), "--resolution", "8"]) == 2
    )
    assert "--resolution must be from 16 to 1024; received 8" in capsys.readouterr().err
    assert main(["prepare-data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["prepare-data", str(photos), "--out", str(photos / "faces")]) == 2
    assert "inside SRC" in capsys.readouterr().err


def test_without_align_faces_are_upright_squares_around_the_box_from_a_zip(photos, tmp_path):
    from facegan.data.prepare import prepare_faces

    source = tmp_path / "photos.zip"  # a zip source works like a folder
    with zipfile.ZipFile(source, "w") as archive:
        archive.write(photos / "group.jpg", "album/group.jpg")
    summary = prepare_faces(source, tmp_path / "out", R, box_scale=1.3)
    assert summary.kept == 2
    for row in _manifest(tmp_path / "out"):
        matrix = np.array(row["transform"])
        assert not row["aligned"] and align.transform_angle(matrix) == pytest.approx(0.0, abs=1e-6)
        x1, y1, x2, y2 = row["box"]
        assert 1.0 / align.transform_scale(matrix) * R == pytest.approx(
            1.3 * max(x2 - x1, y2 - y1), rel=1e-3
        )


@pytest.mark.integration
def test_training_runs_on_the_prepared_folder(prepared, tmp_path):
    import facegan

    _, out, _ = prepared
    run = facegan.train(tiny_config(str(out), steps=2), tmp_path / "run", progress=False)
    assert (run.directory / "config.json").is_file()


@pytest.mark.integration
def test_pack_align_packs_the_faces_prepare_data_keeps(photos, prepared, tmp_path):
    """`facegan pack --align` = prepare-data --align, then pack: the same faces, bit for bit."""
    from facegan.data import packing
    from facegan.data.packed import read_pack_info
    from facegan.data.streaming import PackedImages

    _, out, _ = prepared
    info = packing.pack(
        str(photos), tmp_path / "pack", R, align=True, show_progress=False, report=lambda line: None
    )
    assert (info.count, info.crop) == (3, "aligned")
    assert sorted(p.name for p in (tmp_path / "pack").iterdir()) == [
        "dataset.json",
        "shard-00000-of-00001.tfrecord",
    ]  # the working faces are gone
    packed = PackedImages(read_pack_info(tmp_path / "pack")).sample_pixels(3, 0, 0)
    files = [np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))]
    assert sorted(a.tobytes() for a in packed) == sorted(a.tobytes() for a in files)


@pytest.mark.integration
def test_different_shots_of_one_person_are_all_kept(tmp_path):
    """AT&T's 10 photos of one person differ in pose and expression: none is a duplicate."""
    from facegan.data.prepare import prepare_faces

    if not (ATT / "s1").is_dir():
        pytest.skip(f"needs the shared face data: {ATT}")
    photos = tmp_path / "s1"
    photos.mkdir()
    for path in sorted((ATT / "s1").glob("*.pgm")):
        Image.open(path).save(photos / f"{path.stem}.png")
    summary = prepare_faces(photos, tmp_path / "out", 64, align_faces=True)
    assert summary.photos == 10 and summary.copies == 0 and summary.duplicate == 0
    assert summary.kept == summary.found - summary.low_score - summary.small >= 9
