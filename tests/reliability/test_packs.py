"""Packs: byte-reproducible across processes, resumed with a word, checked when opened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facegan.data.packed import DATASET_FILE

# Packs face_folder in a child process under the given PYTHONHASHSEED; with
# "kill", the third shard's write raises KeyboardInterrupt (Ctrl-C mid-pack).
_PACK = """
import sys
from facegan.data import pack_writer, packing
source, out, kill = sys.argv[1], sys.argv[2], sys.argv[3] == "kill"
real, calls = pack_writer.write_records, []

def write_records(*args, **kwargs):
    calls.append(1)
    if kill and len(calls) == 3:
        raise KeyboardInterrupt
    return real(*args, **kwargs)

pack_writer.write_records = write_records
try:
    packing.pack(source, out, 16, images_per_shard=5, show_progress=False,
                 report=lambda line: print(line, file=sys.stderr))
except KeyboardInterrupt:
    sys.exit(130)
"""


def _pack_in_child(source: Path, out: Path, hash_seed: str, kill: bool = False):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", _PACK, str(source), str(out), "kill" if kill else "whole"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("shard-*.tfrecord"))}


def test_packs_are_byte_identical_under_any_hash_seed_and_after_a_kill(face_folder, tmp_path):
    """Record fields used to follow the process's hash seed (SerializeToString's map order)."""
    for name, seed in (("a", "1"), ("b", "2")):
        done = _pack_in_child(face_folder, tmp_path / name, seed)
        assert done.returncode == 0, done.stderr[-2000:]
    killed = _pack_in_child(face_folder, tmp_path / "resumed", "3", kill=True)
    assert killed.returncode == 130, killed.stderr[-2000:]
    assert not (tmp_path / "resumed" / DATASET_FILE).exists()
    resumed = _pack_in_child(face_folder, tmp_path / "resumed", "4")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    packs = [tmp_path / name for name in ("a", "b", "resumed")]
    hashes = {json.loads((p / DATASET_FILE).read_text())["content_sha256"] for p in packs}
    assert len(hashes) == 1, hashes
    assert _shards(packs[0]) == _shards(packs[1]) == _shards(packs[2])
    # the re-run says that it continues, and from which shard (2 of 5 were finished)
    assert "resuming the unfinished pack" in resumed.stderr
    assert "from shard 3/5 (2 finished)" in resumed.stderr
    assert "resuming" not in _pack_in_child(face_folder, tmp_path / "c", "5").stderr


@pytest.fixture(scope="module")
def small_pack(face_folder, tmp_path_factory) -> Path:
    from facegan.data import packing

    out = tmp_path_factory.mktemp("packs") / "faces"
    packing.pack(
        str(face_folder), out, 16, images_per_shard=5, show_progress=False, report=lambda line: None
    )
    return out


def _edited_copy(pack: Path, tmp_path: Path, **changes) -> Path:
    import shutil

    copy = tmp_path / "pack"
    shutil.copytree(pack, copy)
    description = json.loads((copy / DATASET_FILE).read_text())
    description.update(changes)
    (copy / DATASET_FILE).write_text(json.dumps(description))
    return copy


@pytest.mark.parametrize(
    "changes, found",
    [
        ({"resolution": 32}, "found (16, 16, 3)"),
        ({"channels": 1}, "found (16, 16, 3)"),
        ({"encoding": "raw"}, "raw bytes: (768,); found"),
    ],
)
def test_a_dataset_json_that_does_not_describe_the_records_is_refused_at_open(
    small_pack, tmp_path, changes, found
):
    """These used to fail in the pipeline (Reshape) or train in the wrong colour mode."""
    from conftest import tiny_config
    from facegan.data.sources import DataError
    from facegan.data.streaming import open_packed

    pack = _edited_copy(small_pack, tmp_path, **changes)
    config = tiny_config(str(pack)).with_overrides(
        {"model.resolution": changes.get("resolution", 16)}
    )
    with pytest.raises(DataError) as caught:
        open_packed(config)
    message = str(caught.value)
    assert "record 0 of shard shard-00000-of-00005.tfrecord" in message
    assert "is not what dataset.json says" in message and found in message, message
    assert "\n" not in message


def test_inspect_data_verify_finds_edited_counts_and_changed_bytes(small_pack, tmp_path, capsys):
    """Counts raised together (total and one shard) kept the sizes right and trained before."""
    from facegan.cli import main

    assert main(["inspect-data", str(small_pack), "--verify"]) == 0
    assert "every shard verified" in capsys.readouterr().out
    description = json.loads((small_pack / DATASET_FILE).read_text())
    shards = [dict(shard) for shard in description["shards"]]
    shards[1]["count"] += 1000
    pack = _edited_copy(small_pack, tmp_path, count=description["count"] + 1000, shards=shards)
    assert main(["inspect-data", str(pack)]) == 0  # the cheap checks cannot see it
    capsys.readouterr()
    assert main(["inspect-data", str(pack), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "shard shard-00001-of-00005.tfrecord: holds 5 record(s), dataset.json says 1005" in out
    damaged = tmp_path / "damaged"
    import shutil

    shutil.copytree(small_pack, damaged)
    shard = damaged / shards[2]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle: same size, another hash
    shard.write_bytes(bytes(data))
    assert main(["inspect-data", str(damaged), "--verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is False
    assert report["problems"] == [
        "shard shard-00002-of-00005.tfrecord: its SHA-256 is not the one dataset.json records"
    ]


def test_a_damaged_record_met_while_training_is_one_line_and_the_checkpoint_is_kept(
    small_pack, tmp_path, capsys
):
    """tf.data's DataLossError used to end training with a traceback."""
    import shutil

    import facegan
    from conftest import tiny_config
    from facegan.cli import main

    pack = tmp_path / "pack"
    shutil.copytree(small_pack, pack)
    run = tmp_path / "run"
    facegan.train(tiny_config(str(pack), steps=2), run, progress=False)
    for shard in sorted(pack.glob("shard-*.tfrecord")):  # 32 bytes changed mid-file
        data = bytearray(shard.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 32] = bytes(32)
        shard.write_bytes(bytes(data))
    code = main(["train", "--resume", str(run), "--steps", "8", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("facegan: error: packed dataset"), err
    assert (
        " of shard shard-0000" in last and "is damaged; the last checkpoint ckpt-2 is kept" in last
    )
    assert (run / "checkpoints" / "ckpt-2.index").is_file()
