"""Files from elsewhere are data, never code: zips, pickles, configs, names in reports.

* a zip never writes outside itself (zip-slip) and never inflates without bound;
* a pickle that would run a command is refused before anything runs;
* a config file is parsed as TOML/JSON: code in it stays a string (or is an error);
* a file name in an HTML or Markdown report is shown, never interpreted.
"""

from __future__ import annotations

import ast
import collections
import io
import json
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from facegan.config import Config, ConfigError
from facegan.data import problems as bad
from facegan.data.problems import BadFile
from facegan.data.report_markup import html_escape, markdown_escape
from facegan.data.scan import scan_source
from facegan.data.sources import FolderSource, ZipSource, open_source


def _png(seed: int = 0, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- zip-slip


UNSAFE_NAMES = [
    "/abs.png",
    "../up.png",
    "a/../../x.png",
    "C:/drive.png",
    "\\\\server\\share.png",
    "ok\\..\\..\\win.png",
]


def test_zip_entries_that_would_escape_are_refused(tmp_path):
    archive = tmp_path / "inner" / "faces.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok/good.png", _png())
        for name in UNSAFE_NAMES:
            z.writestr(zipfile.ZipInfo(name), _png(1))
    assert set(zipfile.ZipFile(archive).namelist()) >= set(UNSAFE_NAMES)  # stored as written

    source = open_source(str(archive))
    assert source.names == ["ok/good.png"]
    report = scan_source(source, use_cache=False)
    refused = {item.name: item for item in report.bad}
    assert set(refused) == set(UNSAFE_NAMES)
    assert all(
        item.kind == bad.UNSAFE_PATH and "zip-slip" in item.reason for item in refused.values()
    )
    assert [item.name for item in report.good] == ["ok/good.png"]
    # Nothing was extracted anywhere: no file appeared beside or above the zip.
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["faces.zip", "inner"]


# ---------------------------------------------------------------- zip bombs


def _zip_with(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("good.png", _png())
        z.writestr(name, data)
    return path


def _opened_entries(monkeypatch) -> list[str]:
    """Records the name of every zip entry facegan inflates."""
    from facegan.data import sources

    opened = []
    real_read = sources.read_entry

    def spy(archive, info, limit):
        opened.append(info.filename)
        return real_read(archive, info, limit)

    monkeypatch.setattr(sources, "read_entry", spy)
    return opened


def test_an_entry_declaring_too_many_bytes_is_refused_uninflated(tmp_path, monkeypatch):
    path = _zip_with(tmp_path, "bomb.bmp", bytes(12 * 2**20))  # 12 MiB of zeros -> ~12 KB
    opened = _opened_entries(monkeypatch)
    report = scan_source(ZipSource(path, max_entry_bytes=4 * 2**20), use_cache=False)
    item = {i.name: i for i in report.items}["bomb.bmp"]
    assert item.kind == bad.ZIP_BOMB and "12 MiB" in item.reason and "4 MiB" in item.reason
    assert "bomb.bmp" not in opened and "good.png" in opened
    assert [i.name for i in report.good] == ["good.png"]


def test_an_entry_compressed_beyond_the_ratio_limit_is_refused(tmp_path, monkeypatch):
    path = _zip_with(tmp_path, "zeros.bmp", bytes(24 * 2**20))  # deflate: ~1030:1
    opened = _opened_entries(monkeypatch)
    item = {i.name: i for i in scan_source(ZipSource(path), use_cache=False).items}["zeros.bmp"]
    assert item.kind == bad.ZIP_BOMB and "compression ratio" in item.reason
    assert "zeros.bmp" not in opened


def test_a_lying_size_header_is_a_zip_bomb_read_with_bounded_memory(tmp_path):
    """The headers say 1,000 bytes; the data inflates to 64 MiB. Refused after ~64 KB."""
    import tracemalloc

    path = _zip_with(tmp_path, "liar.bmp", bytes(64 * 2**20))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local, central
        for match in re.finditer(re.escape(signature), bytes(data)):
            start = match.start()
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + 8] == b"liar.bmp":
                data[start + offset : start + offset + 4] = struct.pack("<I", 1000)
    path.write_bytes(bytes(data))

    source = ZipSource(path)
    index = source.names.index("liar.bmp")
    tracemalloc.start()
    try:
        with pytest.raises(BadFile) as refused:
            source.read_bytes(index)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.kind == bad.ZIP_BOMB and "declares" in str(refused.value)
    assert peak < 2**20, peak  # zipfile inflated up to the 256 MiB read limit at once
    report = scan_source(source, use_cache=False)
    assert {i.name: i.kind for i in report.items}["liar.bmp"] == bad.ZIP_BOMB
    assert [i.name for i in report.good] == ["good.png"]


def test_entries_sharing_their_data_are_refused(tmp_path):
    """Many central entries over one local header: the "better zip bomb" layout."""
    path = tmp_path / "overlap.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.png", _png())
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HIL", data[end + 10 : end + 20])
    central = data[offset : offset + size]
    twin = central.replace(b"a.png", b"b.png")  # same local header, another name
    eocd = bytearray(data[end:])
    eocd[8:16] = struct.pack("<HHI", 2, 2, 2 * size)
    path.write_bytes(data[:offset] + central + twin + bytes(eocd))
    assert sorted(zipfile.ZipFile(path).namelist()) == ["a.png", "b.png"]

    source = ZipSource(path)
    assert {(name, kind) for name, kind, _ in source.problems} == {
        ("a.png", bad.ZIP_BOMB),
        ("b.png", bad.ZIP_BOMB),
    }
    assert source.names == []


# ---------------------------------------------------------------- pickles


class _RunsCommand:
    """Unpickling this calls os.system (the classic malicious pickle)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Evaluates:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


def _torch_like(pickled: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickled)
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("payload", [_RunsCommand, _Evaluates])
def test_a_malicious_pickle_is_refused_before_it_runs(payload, protocol, tmp_path):
    from facegan.metrics.torchscript import UnsafePickleError, load_torch_archive

    marker = tmp_path / "pwned"
    # Hidden inside an ordinary-looking state dict, as a real attack would be.
    tree = collections.OrderedDict(weight=[1.0, 2.0], extra={"x": payload(marker)})
    archive = _torch_like(pickle.dumps(tree, protocol=protocol))
    with pytest.raises(UnsafePickleError, match="refusing to load"):
        load_torch_archive(archive)
    assert not marker.exists()


def test_weights_files_are_read_without_unpickling(tmp_path):
    """The user-facing loader (`--inception-weights`, `facegan weights --from`)."""
    from facegan.metrics.inception import WeightsError, read_weights
    from facegan.metrics.torchscript import UnsafePickleError

    marker = tmp_path / "pwned"
    evil_pt = tmp_path / "evil.pt"
    evil_pt.write_bytes(_torch_like(pickle.dumps(_RunsCommand(marker), protocol=2)))
    with pytest.raises(UnsafePickleError):
        read_weights(evil_pt)
    evil_npz = tmp_path / "evil.npz"
    objects = np.empty(1, dtype=object)
    objects[0] = _RunsCommand(marker)
    np.savez(evil_npz, __format__=np.array("facegan-fid-inception-v3/1"), weights=objects)
    with pytest.raises(WeightsError):
        read_weights(evil_npz)["weights"]
    assert not marker.exists()


# Calls that deserialize or evaluate without restriction: facegan must never make them.
_FORBIDDEN_CALLS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("marshal", "load"),
    ("marshal", "loads"),
    ("shelve", "open"),
    ("dill", "load"),
    ("dill", "loads"),
    ("joblib", "load"),
    ("torch", "load"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("cloudpickle", "loads"),
    ("builtins", "eval"),
    ("builtins", "exec"),
}


def _unsafe_calls(source: str) -> list[str]:
    """Unrestricted deserialization or evaluation in Python `source`, by line."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target = node.func
            if isinstance(target, ast.Name) and target.id in ("eval", "exec"):
                found.append(f"line {node.lineno}: {target.id}()")
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                if (target.value.id, target.attr) in _FORBIDDEN_CALLS:
                    found.append(f"line {node.lineno}: {target.value.id}.{target.attr}()")
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found.append(f"line {node.lineno}: allow_pickle not False")
        if isinstance(node, ast.ClassDef):
            bases = {ast.unparse(base) for base in node.bases}
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if bases & {"pickle.Unpickler", "Unpickler"} and "find_class" not in methods:
                found.append(f"line {node.lineno}: Unpickler subclass without find_class")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {alias.name for alias in node.names}
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "pickle"
                and names & {"load", "loads", "Unpickler"}
            ):
                found.append(f"line {node.lineno}: from pickle import {', '.join(sorted(names))}")
    return found


def test_the_checker_finds_unsafe_calls():
    """The scan below would be worthless if it could not see these."""
    samples = [
        "import pickle\npickle.loads(b'')",
        "import numpy as np\nnp.load('x', allow_pickle=True)",
        "eval('1')",
        "from pickle import loads",
        "import yaml\nyaml.load(open('c'))",
        "import pickle\nclass U(pickle.Unpickler):\n    pass",
    ]
    for sample in samples:
        assert _unsafe_calls(sample), sample
    assert not _unsafe_calls("import numpy as np\nnp.load('x', allow_pickle=False)")


def test_facegan_never_unpickles_or_evaluates_without_restriction():
    offenders = {}
    for path in sorted((REPO / "src" / "facegan").rglob("*.py")):
        found = _unsafe_calls(path.read_text())
        if found:
            offenders[str(path.relative_to(REPO))] = found
    assert offenders == {}


# ---------------------------------------------------------------- configs


CODE = "__import__('os').system('touch {marker}')"


def test_code_in_a_toml_config_is_just_a_string(tmp_path):
    marker = tmp_path / "pwned"
    code = CODE.format(marker=marker)
    path = tmp_path / "evil.toml"
    path.write_text(f"preset = {json.dumps(code)}\n[data]\nsource = {json.dumps(code)}\n")
    config = Config.from_file(path)
    assert config.preset == code and config.data.source == code
    assert Config.from_file(_round_trip(config, tmp_path)).data.source == code
    assert not marker.exists()


def _round_trip(config: Config, folder: Path) -> Path:
    path = folder / "again.toml"
    path.write_text(config.to_toml())
    return path


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_code_where_a_number_belongs_is_an_error_not_evaluated(suffix, tmp_path):
    marker = tmp_path / "pwned"
    code = CODE.format(marker=marker) + " or 5"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"train": {"steps": code}}))
    else:
        path.write_text(f"[train]\nsteps = {json.dumps(code)}\n")
    with pytest.raises(ConfigError, match="`train.steps` must be an integer"):
        Config.from_file(path)
    with pytest.raises(ConfigError, match="must be an integer"):
        Config().with_overrides({"train.batch_size": code})  # the --set path
    assert not marker.exists()


def test_a_python_config_file_is_refused_unread(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "config.py"
    path.write_text(f"import os\nos.system('touch {marker}')\n")
    with pytest.raises(ConfigError, match=r"must end in \.toml or \.json"):
        Config.from_file(path)
    assert not marker.exists()


# ---------------------------------------------------------------- names in reports


SCRIPT = "<script>alert(1)</script>.png"
PIPES = "a|b[x](y).png"


@pytest.fixture
def hostile_names(tmp_path) -> FolderSource:
    """Files whose names are markup. `/` cannot be in a file name, so the script tag is a
    folder `<script>alert(1)<` holding `script>.png`: its relative name is SCRIPT."""
    root = tmp_path / "data"
    (root / "<script>alert(1)<").mkdir(parents=True)
    (root / SCRIPT).write_bytes(b"not an image")
    (root / PIPES).write_bytes(b"")
    (root / "*bold* & _em_ `code` $x$ @me.png").write_bytes(_png(3))
    (root / "good.png").write_bytes(_png(4))
    source = FolderSource(root)
    assert SCRIPT in source.names and PIPES in source.names
    return source


def test_html_report_escapes_file_names(hostile_names):
    page = scan_source(hostile_names, use_cache=False).to_html()
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert "a|b[x](y).png" in page  # no meaning in HTML text: shown as is
    assert "&amp; _em_" in page


def test_markdown_report_escapes_file_names(hostile_names):
    text = scan_source(hostile_names, use_cache=False).to_markdown()
    unescaped = r"(?<!\\)"  # not preceded by a backslash
    assert not re.search(unescaped + "<", text) and not re.search(unescaped + r"\(y", text)
    assert r"\<script\>alert\(1\)\</script\>.png" in text
    assert r"a\|b\[x\]\(y\).png" in text
    assert r"\*bold\* \& \_em\_ \`code\` \$x\$ \@me.png" in text
    # Every table row still has exactly its three cell borders (no unescaped `|`).
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows and all(len(re.findall(r"(?<!\\)\|", row)) == 3 for row in rows)


def test_escapers_leave_plain_names_alone():
    assert markdown_escape("s1/10.pgm") == "s1/10.pgm"
    assert html_escape("s1/10.pgm") == "s1/10.pgm"
    assert (
        html_escape('"><img src=x onerror=alert(1)>')
        == "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
    )
