"""`facegan inspect-data` and the scan behind it: exit codes, JSON, duplicates, the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facegan.data.scan as scan_module
from conftest import SHARED_DATA
from facegan.cli import main
from facegan.data import problems as bad
from facegan.data.scan import near_duplicate_groups, scan_source
from facegan.data.sources import FolderSource, ZipSource, open_source

UTKFACE = SHARED_DATA.resolve() / "utkface"


def _image(seed: int, size: int = 24) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC
    )


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private scan cache for the CLI (it uses the default location)."""
    monkeypatch.setenv("FACEGAN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "scans"


@pytest.fixture
def folder(tmp_path) -> Path:
    """5 good images (one an exact copy), 2 bad files, 1 ignored file."""
    root = tmp_path / "data"
    root.mkdir()
    for i in range(4):
        _image(i).save(root / f"face{i}.png")
    shutil.copy(root / "face0.png", root / "copy-of-face0.png")
    (root / "cut.png").write_bytes((root / "face1.png").read_bytes()[:60])
    (root / "zero.jpg").write_bytes(b"")
    (root / "README.md").write_text("faces")
    return root


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- the command


def test_json_report_of_a_usable_folder_exits_0(folder, cache, capsys):
    code, out, err = _cli(capsys, "inspect-data", str(folder), "--json", "--no-progress")
    assert code == 0, err
    report = json.loads(out)
    assert report["usable"] is True
    assert report["counts"] == {"files": 8, "images": 7, "good": 5, "bad": 2, "ignored": 1}
    assert report["bad_by_kind"] == {bad.TRUNCATED: 1, bad.EMPTY: 1}
    assert {item["name"]: item["kind"] for item in report["bad"]} == {
        "cut.png": bad.TRUNCATED,
        "zero.jpg": bad.EMPTY,
    }
    assert report["ignored"] == ["README.md"]
    assert report["exact_duplicates"] == [["copy-of-face0.png", "face0.png"]]
    assert report["sizes"] == {"24x24": 5}
    assert report["warnings"]["smaller_than_resolution"] == sorted(
        ["copy-of-face0.png", "face0.png", "face1.png", "face2.png", "face3.png"]
    )


def test_text_report_names_problems_and_says_usable(folder, cache, capsys):
    code, out, _ = _cli(capsys, "inspect-data", str(folder), "--resolution", "16")
    assert code == 0
    assert "7 image files, 5 usable, 2 bad, 1 other files ignored" in out
    assert "cut.png: file ends early" in out and "zero.jpg: empty file (0 bytes)" in out
    assert "copy-of-face0.png = face0.png" in out
    assert "smaller than" not in out  # 24 px images are not small at 16 px
    assert out.splitlines()[-1].startswith("usable: 5 images for training at 16 px")


def test_a_folder_without_usable_images_exits_1(tmp_path, cache, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"GIF89a nonsense")
    code, out, _ = _cli(capsys, "inspect-data", str(tmp_path / "bad"))
    assert code == 1
    assert out.splitlines()[-1].startswith("NOT usable:")

    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    code, out, _ = _cli(capsys, "inspect-data", str(tmp_path / "none"), "--json")
    assert code == 1
    assert json.loads(out)["ignored"] == ["notes.txt"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect-data", "/definitely/not/here"], "'/definitely/not/here' does not exist"),
        (["inspect-data", ".", "--report", "out.pdf"], "--report must end in .md or .html"),
        (["inspect-data", ".", "--report", "no/such/dir/r.md"], "its folder does not exist"),
        (["inspect-data", ".", "--max-pixels", "2000000000000"], "`data.max_pixels` must be"),
        (["inspect-data", ".", "--min-size", "5000"], "`data.min_size` must be an integer from 1"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, cache, capsys):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("facegan: error: ") and err.count("\n") == 1
    assert message in err


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["inspect-data", ".", "--resolution", "0"])
    assert exit_.value.code == 2


def test_help_explains_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["inspect-data", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in (
        "Exit code 0: usable",
        "1: not usable",
        "--json",
        "--report",
        "--no-cache",
        "--resolution",
        "cached",
    ):
        assert needle in text


@pytest.mark.parametrize("suffix", [".md", ".html"])
def test_report_file_is_written(suffix, folder, cache, tmp_path, capsys):
    target = tmp_path / f"report{suffix}"
    code, out, _ = _cli(capsys, "inspect-data", str(folder), "--report", str(target))
    assert code == 0 and f"full report: {target}" in out
    text = target.read_text()
    assert "cut.png" in text and "README.md" in text.replace("\\", "")
    # a second run never overwrites the first report
    code, _, err = _cli(capsys, "inspect-data", str(folder), "--report", str(target))
    assert code == 2 and "already exists" in err and target.read_text() == text


@pytest.mark.integration
def test_the_command_does_not_import_tensorflow(folder, tmp_path):
    code = (
        "import sys; from facegan.cli import main; "
        f"code = main(['inspect-data', {str(folder)!r}, '--json']); "
        "print('TF' if 'tensorflow' in sys.modules else 'no TF'); sys.exit(code)"
    )
    env = dict(os.environ, FACEGAN_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("no TF")


def test_names_per_category_are_capped(tmp_path):
    for i in range(30):
        (tmp_path / f"broken{i:02d}.png").write_bytes(b"")
    _image(0).save(tmp_path / "ok.png")
    text = scan_source(FolderSource(tmp_path), use_cache=False).format_text()
    assert "broken19.png" in text and "broken20.png" not in text
    assert "… and 10 more files" in text


# ---------------------------------------------------------------- duplicates


@pytest.fixture
def real_photos(tmp_path) -> Path:
    if not UTKFACE.is_dir():
        pytest.skip(f"the shared UTKFace photos are not at {UTKFACE}")
    # Five different people (checked: no two of these are within 8 bits of each other).
    names = sorted(os.listdir(UTKFACE))[::1600][:5]
    root = tmp_path / "photos"
    root.mkdir()
    for i, name in enumerate(names):
        shutil.copy(UTKFACE / name, root / f"p{i}.jpg")
    with Image.open(root / "p0.jpg") as photo:  # resized and re-encoded
        photo.resize((100, 100), Image.Resampling.LANCZOS).save(root / "p0-small.jpg", quality=70)
    with Image.open(root / "p2.jpg") as photo:  # grayscale, another format
        photo.convert("L").save(root / "p2-gray.png")
    shutil.copy(root / "p3.jpg", root / "p3-copy.jpg")  # byte-identical
    return root


def test_near_duplicates_find_altered_copies_and_nothing_else(real_photos):
    report = scan_source(FolderSource(real_photos), use_cache=False)
    assert report.near_duplicates == [["p0-small.jpg", "p0.jpg"], ["p2-gray.png", "p2.jpg"]]
    assert report.exact_duplicates == [["p3-copy.jpg", "p3.jpg"]]
    assert len(report.good) == 8


def test_banded_grouping_equals_comparing_every_pair():
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2**63, 40, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    hashes = []
    for centre in centres:  # clusters: flips of 0..3 random bits around each centre
        for _ in range(rng.integers(1, 12)):
            value = int(centre)
            for bit in rng.choice(64, rng.integers(0, 4), replace=False):
                value ^= 1 << int(bit)
            hashes.append(value)
    hashes += rng.integers(0, 2**63, 500, dtype=np.int64).tolist()  # unrelated
    assert near_duplicate_groups(hashes, 2) == _brute_force_groups(hashes, 2)


def _brute_force_groups(hashes: list[int], distance: int) -> list[list[int]]:
    parent = list(range(len(hashes)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if bin(hashes[i] ^ hashes[j]).count("1") <= distance:
                parent[find(i)] = find(j)
    groups = {}
    for i in range(len(hashes)):
        groups.setdefault(find(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


# ---------------------------------------------------------------- the cache


@pytest.fixture
def count_decodes(monkeypatch) -> list[str]:
    """The name of every file the scan reads and decodes."""
    decoded = []
    real = scan_module.scan_item

    def counting(source, index, *args):
        decoded.append(source.names[index])
        return real(source, index, *args)

    monkeypatch.setattr(scan_module, "scan_item", counting)
    return decoded


def test_an_unchanged_folder_is_not_decoded_again(folder, tmp_path, count_decodes):
    first = scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
    assert len(count_decodes) == 7 and first.decoded == 7
    count_decodes.clear()
    second = scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
    assert count_decodes == [] and second.decoded == 0
    assert [vars(i) for i in second.items] == [vars(i) for i in first.items]
    assert second.exact_duplicates == first.exact_duplicates


def test_touched_changed_and_new_files_are_scanned_again(folder, tmp_path, count_decodes):
    scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
    count_decodes.clear()
    stat = (folder / "face1.png").stat()
    os.utime(folder / "face1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _image(9, 30).save(folder / "face2.png")  # new content and size
    _image(10).save(folder / "new.png")
    (folder / "face3.png").unlink()
    report = scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
    assert sorted(count_decodes) == ["face1.png", "face2.png", "new.png"]
    sizes = {item.name: (item.width, item.height) for item in report.good}
    assert sizes["face2.png"] == (30, 30) and "face3.png" not in sizes


def test_a_damaged_cache_file_is_ignored_and_replaced(folder, tmp_path, count_decodes):
    scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
    (cache_file,) = (tmp_path / "c").glob("*.json")
    for damage in (b"{not json", b'{"format": "facegan-scan/1", "items": 7}', b"\xff\xfe"):
        cache_file.write_bytes(damage)
        count_decodes.clear()
        report = scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
        assert len(count_decodes) == 7 and len(report.good) == 5
    json.loads(cache_file.read_text())  # rewritten whole
    assert [p.name for p in (tmp_path / "c").iterdir()] == [cache_file.name]  # no temp files


def test_other_limits_do_not_reuse_the_cache(folder, tmp_path, count_decodes):
    scan_source(FolderSource(folder), cache_dir=tmp_path / "c")
    count_decodes.clear()
    report = scan_source(FolderSource(folder), cache_dir=tmp_path / "c", min_size=30)
    assert len(count_decodes) == 7
    # All are 24 px: too small now (the cut file too, by its header, before decoding).
    assert {item.kind for item in report.bad} == {bad.TOO_SMALL, bad.EMPTY}
    assert not report.usable


def test_no_cache_reads_and_writes_nothing(folder, tmp_path, count_decodes):
    scan_source(FolderSource(folder), cache_dir=tmp_path / "c", use_cache=False)
    assert not (tmp_path / "c").exists()


def test_a_rewritten_zip_with_the_same_entries_is_not_decoded_again(
    folder, tmp_path, count_decodes
):
    archive = tmp_path / "faces.zip"
    for _ in range(2):  # written twice: new mtime, same entries (same CRC and size)
        with zipfile.ZipFile(archive, "w") as z:
            for path in sorted(folder.iterdir()):
                z.write(path, path.name)
        report = scan_source(ZipSource(archive), cache_dir=tmp_path / "c")
    assert len(count_decodes) == 7 and report.decoded == 0


def test_the_cli_cache_makes_a_rerun_decode_nothing(folder, cache, capsys, count_decodes):
    assert _cli(capsys, "inspect-data", str(folder))[0] == 0
    assert len(count_decodes) == 7 and len(list(cache.glob("*.json"))) == 1
    code, out, _ = _cli(capsys, "inspect-data", str(folder))
    assert code == 0 and len(count_decodes) == 7
    assert "0 files read, 7 from cache" in out
    assert _cli(capsys, "inspect-data", str(folder), "--no-cache")[0] == 0
    assert len(count_decodes) == 14


def test_training_load_uses_the_same_cached_scan(folder, tmp_path, count_decodes):
    from facegan.config import DataConfig
    from facegan.data.pipeline import load_training_images

    config = DataConfig(source=str(folder))
    first = load_training_images(open_source(str(folder)), config, 16, 3, cache_dir=tmp_path)
    count_decodes.clear()
    second = load_training_images(open_source(str(folder)), config, 16, 3, cache_dir=tmp_path)
    assert count_decodes == [] and second.report.decoded == 0
    np.testing.assert_array_equal(first.pixels, second.pixels)
    assert second.failures == first.failures and len(second.failures) == 2


def test_in_memory_sources_are_scanned_without_a_cache(tmp_path):
    report = scan_source(open_source("embedded:lfw"), cache_dir=tmp_path / "c")
    assert len(report.good) == 100 and report.modes() == {"L": 100}
    assert not (tmp_path / "c").exists()
