"""Every kind of bad input file is skipped with its reason; none stops a scan or a run.

The folder below holds one file per failure kind, built small: a decompression bomb
is a PNG whose header declares 9000x9000 (or 40000x40000) pixels over a few bytes of
data, so no test ever allocates a large image.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facegan.config import DataConfig
from facegan.data import problems as bad
from facegan.data.decode import check_size, prepare
from facegan.data.problems import BadFile, display_name
from facegan.data.scan import scan_source
from facegan.data.sources import DataError, FolderSource, open_source

NON_UTF8_GOOD = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
NON_UTF8_BAD = os.fsdecode(b"broken\xff.jpg")

# name -> the kind of problem the scan must report for it
EXPECTED_BAD = {
    "truncated.jpg": bad.TRUNCATED,
    "truncated.png": bad.TRUNCATED,
    "empty.png": bad.EMPTY,
    "random.jpg": bad.NOT_IMAGE,
    "text.png": bad.NOT_IMAGE,
    "bomb.png": bad.TOO_MANY_PIXELS,  # 9000x9000: above data.max_pixels
    "huge.png": bad.TOO_MANY_PIXELS,  # 40000x40000: Pillow refuses it too
    "bomb-sof.jpg": bad.TOO_MANY_PIXELS,  # a real JPEG whose SOF header was patched
    "one.png": bad.TOO_SMALL,  # 1x1
    "loop.png": bad.SYMLINK_LOOP,  # a link to itself
    f"sub{os.sep}up{os.sep}": bad.SYMLINK_LOOP,  # a link to the folder above
    "dangling.png": bad.BROKEN_LINK,
    "fifo.png": bad.NOT_A_FILE,  # reading it would block forever
    NON_UTF8_BAD: bad.NOT_IMAGE,
}
EXPECTED_GOOD = {
    "good.jpg",
    "cmyk.jpg",
    "sixteen.png",
    "palette.png",
    "rotated.jpg",
    "anim.gif",
    "png-inside.jpg",
    "wide.png",
    NON_UTF8_GOOD,
    f"sub{os.sep}inside.png",
}
EXPECTED_IGNORED = {"notes.txt", "photo.txt"}


# ---------------------------------------------------------------- building bad files


def _photo(width: int = 32, height: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares `width` x `height` RGB over ~100 bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG with its frame header (SOF0) patched to claim `width` x `height`."""
    data = bytearray(_encoded(_photo(16, 16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def rotated_jpeg() -> bytes:
    """Stored 40x20: left half red, right half blue; EXIF orientation 6 (turn 90° clockwise)."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())


def build_bad_folder(root: Path) -> Path:
    """One file per bad-input kind, beside good images of every awkward mode."""
    root.mkdir(parents=True, exist_ok=True)
    photo_jpeg = _encoded(_photo(64, 64, 1), "JPEG", quality=90)
    photo_png = _encoded(_photo(64, 64, 2), "PNG")
    # good
    (root / "good.jpg").write_bytes(photo_jpeg)
    _photo(32, 32, 3).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(root / "sixteen.png")
    _photo(24, 24, 4).convert("P").save(root / "palette.png")
    (root / "rotated.jpg").write_bytes(rotated_jpeg())
    frames = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16), (0, 0, 255))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    (root / "png-inside.jpg").write_bytes(photo_png)  # a wrong extension: usable, noted
    _photo(48, 24, 5).save(root / "wide.png")
    (root / NON_UTF8_GOOD).write_bytes(_encoded(_photo(16, 16, 6), "PNG"))
    (root / "sub").mkdir()
    _photo(16, 16, 7).save(root / "sub" / "inside.png")
    # bad
    (root / "truncated.jpg").write_bytes(photo_jpeg[: len(photo_jpeg) // 2])
    (root / "truncated.png").write_bytes(photo_png[: len(photo_png) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "random.jpg").write_bytes(np.random.default_rng(0).bytes(300))
    (root / "text.png").write_text("this is not a picture\n")
    (root / "bomb.png").write_bytes(png_declaring(9000, 9000))
    (root / "huge.png").write_bytes(png_declaring(40000, 40000))
    (root / "bomb-sof.jpg").write_bytes(jpeg_declaring(8000, 9000))
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "one.png")
    os.symlink("loop.png", root / "loop.png")
    os.symlink("..", root / "sub" / "up")
    os.symlink("nowhere.png", root / "dangling.png")
    os.mkfifo(root / "fifo.png")
    (root / NON_UTF8_BAD).write_bytes(b"\x00\x01 not an image")
    # ignored: no image extension (one of them is a JPEG in disguise)
    (root / "notes.txt").write_text("dataset notes")
    (root / "photo.txt").write_bytes(photo_jpeg)
    return root


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    try:
        return build_bad_folder(tmp_path_factory.mktemp("bad") / "data")
    except (OSError, UnicodeEncodeError) as err:  # pragma: no cover - exotic filesystems
        pytest.skip(f"this filesystem cannot hold the bad-input files: {err}")


@pytest.fixture(scope="module")
def report(bad_folder):
    return scan_source(FolderSource(bad_folder), resolution=32, use_cache=False)


# ---------------------------------------------------------------- the scan


def test_each_bad_file_is_skipped_with_its_kind_and_the_good_ones_are_kept(report):
    kinds = {item.name: item.kind for item in report.bad}
    assert kinds == EXPECTED_BAD
    assert {item.name for item in report.good} == EXPECTED_GOOD
    assert set(report.ignored) == EXPECTED_IGNORED
    assert all(item.reason for item in report.bad)
    assert report.usable
    counts = report.to_dict()["counts"]
    assert counts == {
        "files": len(EXPECTED_BAD) + len(EXPECTED_GOOD) + len(EXPECTED_IGNORED),
        "images": len(EXPECTED_BAD) + len(EXPECTED_GOOD),
        "good": len(EXPECTED_GOOD),
        "bad": len(EXPECTED_BAD),
        "ignored": len(EXPECTED_IGNORED),
    }


def test_reasons_name_the_size_and_the_limit(report):
    reasons = {item.name: item.reason for item in report.bad}
    assert "9000x9000" in reasons["bomb.png"] and "64,000,000" in reasons["bomb.png"]
    assert "8000x9000" in reasons["bomb-sof.jpg"]
    assert "1x1" in reasons["one.png"] and "data.min_size = 8" in reasons["one.png"]
    assert "0 bytes" in reasons["empty.png"]
    assert "loop" in reasons["loop.png"]


def test_modes_and_warnings_are_recorded(report):
    items = {item.name: item for item in report.good}
    assert items["cmyk.jpg"].mode == "CMYK" and items["palette.png"].mode == "P"
    assert items["sixteen.png"].mode.startswith("I")
    assert items["anim.gif"].frames == 2 and report.animated() == ["anim.gif"]
    assert report.extension_mismatches() == [("png-inside.jpg", "PNG")]
    assert report.rotated() == ["rotated.jpg"]
    assert (items["rotated.jpg"].width, items["rotated.jpg"].height) == (20, 40)  # as shown
    assert set(report.non_square()) == {"wide.png", "rotated.jpg"}
    assert set(report.smaller_than_resolution()) >= {
        "sixteen.png",
        "wide.png",
        "sub/inside.png",
        "rotated.jpg",
    }


def test_a_folder_link_loop_neither_hangs_nor_counts_twice(bad_folder):
    source = FolderSource(bad_folder)
    assert source.names.count(f"sub{os.sep}inside.png") == 1
    assert not any(name.startswith(f"sub{os.sep}up{os.sep}") for name in source.names)


def test_a_second_link_to_a_scanned_folder_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    _photo(16, 16).save(tmp_path / "real" / "a.png")
    os.symlink("real", tmp_path / "alias")
    source = FolderSource(tmp_path)
    assert source.names == [f"alias{os.sep}a.png"]  # sorted: the alias is walked first
    assert [(name, kind) for name, kind, _ in source.problems] == [
        (f"real{os.sep}", bad.REPEATED_FOLDER)
    ]


def test_bombs_are_refused_before_any_pixel_is_decoded(monkeypatch):
    from PIL import ImageFile

    bombs = (png_declaring(9000, 9000), jpeg_declaring(8000, 9000))
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self.size))
    for data in bombs:
        with Image.open(io.BytesIO(data)) as image:
            with pytest.raises(BadFile) as refused:
                prepare(image, 16, 3)
        assert refused.value.kind == bad.TOO_MANY_PIXELS
    assert loads == []


def test_pixel_limit_and_min_size_follow_the_config():
    image = Image.new("RGB", (100, 50))
    check_size(image, max_pixels=5000, min_size=50)  # exactly at both limits: allowed
    with pytest.raises(BadFile, match="5,001"):
        check_size(Image.new("RGB", (5001, 1)), max_pixels=5000, min_size=1)
    with pytest.raises(BadFile, match="below data.min_size = 51"):
        check_size(image, max_pixels=5000, min_size=51)


def test_the_limits_are_validated_config_fields(tmp_path):
    from facegan.config import Config, ConfigError

    with pytest.raises(ConfigError, match=r"`data.max_pixels` must be a positive integer.*0$"):
        DataConfig(max_pixels=0)
    with pytest.raises(ConfigError, match=r"`data.min_size` must be an integer from 1 to 4096"):
        DataConfig(min_size=0)
    config = Config().with_overrides({"data.max_pixels": "1000000", "data.min_size": "32"})
    path = tmp_path / "limits.toml"
    path.write_text(config.to_toml())
    assert Config.from_file(path).data == DataConfig(max_pixels=1_000_000, min_size=32)


def test_exif_orientation_is_applied_when_decoding():
    with Image.open(io.BytesIO(rotated_jpeg())) as image:
        pixels = prepare(image, 16, 3).astype(int)
    # Turned 90° clockwise, the stored left (red) half is on top, the right (blue) below.
    top, bottom = pixels[:6].reshape(-1, 3).mean(0), pixels[-6:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_truncated_jpeg_is_caught_despite_reduced_scale_decoding():
    """The scan decodes JPEGs at 1/8 scale (draft); cutting the data must still fail."""
    full = _encoded(_photo(256, 256, 9), "JPEG", quality=95)
    for cut in (len(full) // 2, len(full) - 40):
        source = _BytesSource({"cut.jpg": full[:cut], "whole.jpg": full})
        kinds = {item.name: item.kind for item in scan_source(source, use_cache=False).items}
        assert kinds == {"cut.jpg": bad.TRUNCATED, "whole.jpg": ""}


def test_non_utf8_names_are_shown_with_escapes(report):
    assert display_name(NON_UTF8_GOOD) == "caf\\xe9.png"
    text = report.format_text(max_names=100)
    as_json = json.dumps(report.to_dict(include_items=True))
    for shown in (text, as_json, report.to_markdown(), report.to_html()):
        shown.encode("utf-8")  # strict: a lone surrogate would raise here
    assert "broken\\xff.jpg" in text and "broken\\\\xff.jpg" in as_json


def test_display_name_keeps_one_name_on_one_line():
    assert display_name("a\nb\tc.png") == "a\\nb\\tc.png"
    assert display_name("evil\u202egnp.exe") == "evil\\u202egnp.exe"  # right-to-left override
    assert display_name("visage été.png") == "visage été.png"


# ---------------------------------------------------------------- training and decoding


def test_training_load_keeps_the_good_and_names_every_bad_file(bad_folder, tmp_path):
    from facegan.data.pipeline import load_training_images

    decoded = load_training_images(
        FolderSource(bad_folder), DataConfig(source=str(bad_folder)), 16, 3, cache_dir=tmp_path
    )
    assert set(decoded.names) == EXPECTED_GOOD
    assert decoded.pixels.shape == (len(EXPECTED_GOOD), 16, 16, 3)
    failures = dict(decoded.failures)
    assert set(failures) == {display_name(name) for name in EXPECTED_BAD}
    assert all(reason for reason in failures.values())
    assert decoded.report is not None and len(decoded.report.bad) == len(EXPECTED_BAD)


def test_plain_decoding_without_a_scan_also_survives_every_bad_file(bad_folder):
    from facegan.data.pipeline import decode_source

    decoded = decode_source(FolderSource(bad_folder), 16, 3)
    assert set(decoded.names) == EXPECTED_GOOD
    assert {name for name, _ in decoded.failures} == {display_name(n) for n in EXPECTED_BAD}


def test_training_refuses_an_all_bad_folder_with_one_line(tmp_path):
    from facegan.data.pipeline import load_training_images

    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.png").write_bytes(png_declaring(9000, 9000))
    (tmp_path / "c.png").write_text("nope")
    with pytest.raises(DataError) as refused:
        load_training_images(
            open_source(str(tmp_path)),
            DataConfig(source=str(tmp_path)),
            16,
            3,
            cache_dir=tmp_path / "cache",
        )
    message = str(refused.value)
    assert "\n" not in message
    assert "none of its 3 image file(s) is usable" in message
    assert "1 empty" in message and "1 too_many_pixels" in message and "1 not_image" in message
    assert "facegan inspect-data" in message


def test_facegan_train_refuses_an_all_bad_folder_before_making_a_run(tmp_path, capsys, monkeypatch):
    from facegan.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jpg").write_bytes(b"")
    (data / "b.png").write_text("nope")
    code = main(["train", "--data", str(data), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("facegan: error: `data.source`") and "none of its 2 image file(s)" in err
    assert not (tmp_path / "run").exists()


def test_an_empty_folder_is_refused_naming_what_it_holds(tmp_path):
    (tmp_path / "photo.heic").write_bytes(b"x")
    with pytest.raises(DataError, match=r"holds no image files .*photo\.heic"):
        open_source(str(tmp_path))


# ---------------------------------------------------------------- unreadable files


def _scan_kinds(path: Path) -> dict[str, str]:
    source = open_source(str(path), require_images=False)
    return {item.name: item.kind or "ok" for item in scan_source(source, use_cache=False).items}


def _scan_kinds_as_nobody(path: Path) -> dict[str, str]:
    """Scans in a forked child that dropped to uid 65534, where permissions bind root too.

    A fork (not a new interpreter) because the interpreter may live where `nobody`
    cannot read it; the child only scans and writes JSON to a pipe.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = json.dumps(_scan_kinds(path))
            code = 0
        except BaseException as err:  # report anything to the parent, then leave
            result = json.dumps({"error": f"{type(err).__name__}: {err}"})
        with os.fdopen(write_end, "w") as out:
            out.write(result)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        result = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert "error" not in result, result["error"]
    return result


def test_unreadable_files_and_folders_are_skipped_with_their_reason():
    # tmp_path lies below a 0700 folder that `nobody` could not enter: use a world-readable one.
    root = Path(tempfile.mkdtemp(prefix="facegan-perm-"))
    try:
        root.chmod(0o755)
        _photo(16, 16).save(root / "ok.png")
        _photo(16, 16).save(root / "secret.png")
        (root / "locked").mkdir()
        _photo(16, 16).save(root / "locked" / "inside.png")
        (root / "secret.png").chmod(0)
        (root / "locked").chmod(0)
        if os.geteuid() != 0:
            kinds = _scan_kinds(root)
        elif hasattr(os, "fork") and hasattr(os, "setuid"):
            kinds = _scan_kinds_as_nobody(root)
        else:  # pragma: no cover
            pytest.skip("running as root without fork/setuid: permissions cannot be tested")
        assert kinds == {
            "ok.png": "ok",
            "secret.png": bad.UNREADABLE,
            f"locked{os.sep}": bad.UNREADABLE,
        }
    finally:
        (root / "locked").chmod(0o755)
        shutil.rmtree(root)


def test_an_unreadable_record_is_not_cached(tmp_path, monkeypatch):
    """Fixing permissions changes no mtime: such a file must be tried again next time."""
    _photo(16, 16).save(tmp_path / "a.png")
    source = FolderSource(tmp_path)
    real_read = FolderSource.read_bytes
    monkeypatch.setattr(
        FolderSource,
        "read_bytes",
        lambda self, i: (_ for _ in ()).throw(PermissionError(13, "denied")),
    )
    first = scan_source(source, cache_dir=tmp_path / "cache")
    assert first.items[0].kind == bad.UNREADABLE
    monkeypatch.setattr(FolderSource, "read_bytes", real_read)
    second = scan_source(FolderSource(tmp_path), cache_dir=tmp_path / "cache")
    assert second.items[0].ok and second.decoded == 1


# ---------------------------------------------------------------- helpers


class _BytesSource:
    """A minimal in-memory source: {name: file bytes}."""

    encoded = True
    description = "test bytes"
    ignored: list = []
    problems: list = []

    def __init__(self, files: dict[str, bytes]):
        self._files = files
        self.names = sorted(files)

    def __len__(self) -> int:
        return len(self.names)

    def read_bytes(self, index: int) -> bytes:
        return self._files[self.names[index]]

    def identity(self):
        return None

    def signature(self, index: int):
        return None


def test_file_modes_are_what_the_test_meant(bad_folder):
    """Guards the fixture: the FIFO is a FIFO and the loop is a link."""
    assert stat.S_ISFIFO(os.lstat(bad_folder / "fifo.png").st_mode)
    assert os.path.islink(bad_folder / "loop.png")
