import zipfile

import numpy as np
import pytest

from conftest import MIXED_BROKEN, MIXED_GOOD
from facegan.data import DataError, open_source
from facegan.data.pipeline import decode_source, training_dataset


def _decode(path, resolution=16, channels=3):
    return decode_source(open_source(str(path)), resolution, channels)


def _by_name(decoded, name):
    return decoded.pixels[decoded.names.index(name)]


def test_folder_decodes_every_kind_and_skips_broken(mixed_folder):
    decoded = _decode(mixed_folder)
    assert decoded.pixels.shape == (MIXED_GOOD, 16, 16, 3)
    assert decoded.pixels.dtype == np.uint8
    assert {name for name, _ in decoded.failures} == MIXED_BROKEN
    assert all(reason for _, reason in decoded.failures)
    assert "nested/deeper/inner.png" in decoded.names  # recursive
    assert "notes.txt" not in decoded.names + [n for n, _ in decoded.failures]


def test_modes_become_configured_channels(mixed_folder):
    rgb = _decode(mixed_folder, 16, 3)
    gray = _decode(mixed_folder, 16, 1)
    assert gray.pixels.shape == (MIXED_GOOD, 16, 16, 1)
    # RGBA: the transparent top half is composited on white, the opaque bottom stays red
    rgba = _by_name(rgb, "rgba.png")
    assert np.all(rgba[1:6] >= 250)
    np.testing.assert_allclose(rgba[11:15].reshape(-1, 3).mean(0), [255, 0, 0], atol=3)
    # palette with a transparent index: white on top, blue below
    palette = _by_name(rgb, "palette.png")
    assert np.all(palette[1:6] >= 250)
    np.testing.assert_allclose(palette[11:15].reshape(-1, 3).mean(0), [0, 0, 255], atol=3)
    # 16-bit: scaled to 8 bits, not clipped (32768 -> 128, 65535 -> 255)
    sixteen = _by_name(gray, "sixteen.png")
    assert abs(int(sixteen[2, 8, 0]) - 128) <= 1 and sixteen[13, 8, 0] == 255
    # animated GIF: the first frame (red), not the second (blue)
    gif = _by_name(rgb, "anim.gif")
    np.testing.assert_allclose(gif.reshape(-1, 3).mean(0), [255, 0, 0], atol=6)
    # grayscale source in an RGB config: three equal channels
    g = _by_name(rgb, "gray.png").astype(int)
    assert np.abs(g[..., 0] - g[..., 1]).max() == 0


def test_center_crop_of_non_square(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, 20:40] = 255  # the centred square is white, the sides black
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = _decode(tmp_path, 16, 3).pixels[0]
    assert out.min() >= 250


def test_zip_source(mixed_folder, tmp_path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(mixed_folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(mixed_folder).as_posix())
    decoded = _decode(archive)
    assert len(decoded) == MIXED_GOOD
    assert {name for name, _ in decoded.failures} == MIXED_BROKEN
    np.testing.assert_array_equal(decoded.pixels, _decode(mixed_folder).pixels)


def test_embedded_lfw():
    source = open_source("embedded:lfw")
    assert len(source) == 100 and source.natural_channels == 1
    decoded = decode_source(source, 32, 1)
    assert decoded.pixels.shape == (100, 32, 32, 1) and not decoded.failures
    assert 60 < decoded.pixels.mean() < 200  # real faces, not blank


def test_bad_sources_are_user_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        open_source(str(tmp_path / "empty"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="received the file"):
        open_source(str(tmp_path / "file.txt"))
    (tmp_path / "bad.zip").write_text("not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        open_source(str(tmp_path / "bad.zip"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of its 1 images could be decoded"):
        _decode(broken)


def _batches(dataset, count):
    return [b.numpy() for b, _ in zip(dataset, range(count))]


def test_pipeline_scale_shape_and_epoch_coverage():
    pixels = (
        np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8) * 25
    )
    batches = _batches(training_dataset(pixels, 5, seed=1, flip=False), 4)
    assert batches[0].shape == (5, 4, 4, 1) and batches[0].dtype == np.float32
    values = np.concatenate(batches)[:, 0, 0, 0]
    assert values.min() >= -1.0 and values.max() <= 1.0
    first_epoch, second_epoch = values[:10], values[10:]
    expected = np.arange(10) * 25 * (2 / 255) - 1
    np.testing.assert_allclose(np.sort(first_epoch), expected, atol=1e-6)  # each image once
    np.testing.assert_allclose(np.sort(second_epoch), expected, atol=1e-6)
    assert not np.array_equal(first_epoch, second_epoch)  # reshuffled each epoch


def test_pipeline_resumes_at_exact_step():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (13, 4, 4, 3), dtype=np.uint8)  # 13: batches straddle epochs
    full = _batches(training_dataset(pixels, 4, seed=5, flip=True), 9)
    resumed = _batches(training_dataset(pixels, 4, seed=5, flip=True, start_step=6), 3)
    for a, b in zip(full[6:], resumed):
        np.testing.assert_array_equal(a, b)
    other_seed = _batches(training_dataset(pixels, 4, seed=6, flip=True), 1)
    assert not np.array_equal(full[0], other_seed[0])


def test_pipeline_flips_about_half():
    pixels = np.zeros((64, 2, 2, 1), np.uint8)
    pixels[:, :, 0] = 255  # left column white: a flip moves it right
    batch = _batches(training_dataset(pixels, 64, seed=0, flip=True), 1)[0]
    flipped = int((batch[:, 0, 1, 0] > 0).sum())
    assert 16 < flipped < 48
    unflipped = _batches(training_dataset(pixels, 64, seed=0, flip=False), 1)[0]
    assert (unflipped[:, 0, 1, 0] > 0).sum() == 0
