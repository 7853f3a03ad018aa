import numpy as np
from PIL import Image

from facegan.artifacts.images import make_grid, png_bytes, save_png


def test_grid_layout():
    images = np.stack([np.full((4, 4, 3), i * 10, np.uint8) for i in range(5)])
    grid = make_grid(images, padding=1, background=0)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)  # 5 images -> 3 columns, 2 rows
    assert grid[1, 1, 0] == 0 and grid[1, 6, 0] == 10 and grid[6, 1, 0] == 30
    assert grid[6, 11].tolist() == [0, 0, 0]  # empty sixth cell stays background


def test_save_png_gray_and_rgb(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    save_png(gray, tmp_path / "a" / "g.png")
    loaded = Image.open(tmp_path / "a" / "g.png")
    assert loaded.mode == "L"
    np.testing.assert_array_equal(np.asarray(loaded), gray[..., 0])
    rgb = np.zeros((2, 3, 3), np.uint8)
    save_png(rgb, tmp_path / "c.png")
    assert Image.open(tmp_path / "c.png").size == (3, 2)
    assert not list(tmp_path.rglob("*.partial"))


def test_png_bytes_keeps_the_aspect_ratio_of_a_strip():
    import io

    strip = make_grid(np.zeros((8, 32, 32, 3), np.uint8), columns=8)  # 1 x 8 faces, with gaps
    height, width = strip.shape[:2]
    assert width > 7 * height
    expected = (512, round(height * 512 / width))
    assert Image.open(io.BytesIO(png_bytes(strip, size=512))).size == expected
    square = np.zeros((32, 32, 3), np.uint8)
    assert Image.open(io.BytesIO(png_bytes(square, size=512))).size == (512, 512)
    assert Image.open(io.BytesIO(png_bytes(square))).size == (32, 32)
