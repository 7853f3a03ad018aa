"""Packed datasets: `facegan pack` writes them once, training streams them (issue #13)."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facegan
from conftest import MIXED_BROKEN, tiny_config
from facegan.cli import main
from facegan.config import ConfigError
from facegan.data import pack_writer, packing
from facegan.data.packed import DATASET_FILE, read_pack_info
from facegan.data.pipeline import decode_source
from facegan.data.sources import DataError, open_source
from facegan.data.streaming import PackedImages, open_packed

QUIET = {"report": lambda line: None, "show_progress": False}


def _pack(source, out, resolution=16, **kwargs):
    return packing.pack(str(source), out, resolution, **{**QUIET, **kwargs})


@pytest.fixture(scope="module")
def packed(face_folder, tmp_path_factory):
    """The 24 face_folder images at 16 px in 5 shards (5, 5, 5, 5, 4)."""
    out = tmp_path_factory.mktemp("packs") / "faces"
    _pack(face_folder, out, images_per_shard=5)
    return out


def _records(directory: Path) -> list[tuple[np.ndarray, int, list[int]]]:
    """The records as another tool reads them: plain tf.data and the documented features."""
    info = json.loads((directory / DATASET_FILE).read_text())
    files = [str(directory / shard["file"]) for shard in info["shards"]]
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "index": tf.io.FixedLenFeature([], tf.int64),
        "labels": tf.io.VarLenFeature(tf.int64),
    }
    out = []
    for serialized in tf.data.TFRecordDataset(files):
        features = tf.io.parse_single_example(serialized, spec)
        raw = features["image"].numpy()
        if info["encoding"] == "png":
            image = np.asarray(Image.open(io.BytesIO(raw)))
        else:
            shape = (info["resolution"], info["resolution"], info["channels"])
            image = np.frombuffer(raw, np.uint8).reshape(shape)
        out.append(
            (
                image.reshape(info["resolution"], info["resolution"], info["channels"]),
                int(features["index"]),
                tf.sparse.to_dense(features["labels"]).numpy().tolist(),
            )
        )
    return out


def test_a_pack_holds_every_usable_image_once_decoded_as_training_decodes_it(packed, face_folder):
    info = read_pack_info(packed)
    assert (info.count, info.resolution, info.channels, info.encoding) == (24, 16, 3, "png")
    assert [s.count for s in info.shards] == [5, 5, 5, 5, 4]
    assert [s.file for s in info.shards] == [f"shard-0000{k}-of-00005.tfrecord" for k in range(5)]
    records = _records(packed)
    assert sorted(index for _, index, _ in records) == list(range(24))
    decoded = decode_source(open_source(str(face_folder)), 16, 3).pixels
    want = sorted(image.tobytes() for image in decoded)
    assert sorted(image.tobytes() for image, _, _ in records) == want  # bit for bit
    # a seeded random order: not the folder's order
    assert [r[0].tobytes() for r in records] != [image.tobytes() for image in decoded]


def test_raw_encoding_stores_the_same_pixels(packed, face_folder, tmp_path):
    _pack(face_folder, tmp_path / "raw", encoding="raw", images_per_shard=5)
    png, raw = _records(packed), _records(tmp_path / "raw")
    assert [(r[0].tobytes(), r[1]) for r in png] == [(r[0].tobytes(), r[1]) for r in raw]
    assert read_pack_info(tmp_path / "raw").encoding == "raw"


def test_skipped_files_are_reported_as_inspect_data_reports_them(mixed_folder, tmp_path, capsys):
    lines = []
    _pack(mixed_folder, tmp_path / "mixed", report=lines.append)
    assert main(["inspect-data", str(mixed_folder), "--no-progress"]) == 0
    inspected = capsys.readouterr().out
    for name in MIXED_BROKEN:
        shown = [line for line in lines[0].splitlines() if name in line]
        assert shown and all(line in inspected for line in shown), name
    info = read_pack_info(tmp_path / "mixed")
    assert {name for name, _ in info.skipped} == MIXED_BROKEN
    assert info.count == 14


def test_an_interrupted_pack_is_resumed_by_the_same_command(face_folder, tmp_path, monkeypatch):
    real = pack_writer.write_records
    calls = []

    def failing_on_the_third_shard(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of shard 3
        return real(*args, **kwargs)

    monkeypatch.setattr(pack_writer, "write_records", failing_on_the_third_shard)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        _pack(face_folder, out, images_per_shard=5)
    assert not (out / DATASET_FILE).exists()  # never a description of missing shards
    finished = sorted(p.name for p in out.glob("shard-*.tfrecord"))
    assert finished == ["shard-00000-of-00005.tfrecord", "shard-00001-of-00005.tfrecord"]
    monkeypatch.setattr(pack_writer, "write_records", real)
    with pytest.raises(DataError, match="unfinished pack of other settings"):
        _pack(face_folder, out, images_per_shard=4)
    calls.clear()
    resumed = _pack(face_folder, out, images_per_shard=5)
    whole = _pack(face_folder, tmp_path / "whole", images_per_shard=5)
    assert resumed.content_sha256 == whole.content_sha256
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in (tmp_path / "whole").iterdir()
    )  # no leftovers


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--resolution", "100"],
            "--resolution must be a power of two from 8 to 1024; received 100",
        ),
        (["--resolution", "16", "--labels", "pattern:(no-group)"], "needs named groups"),
    ],
)
def test_bad_pack_arguments_are_one_line_errors(argv, message, face_folder, tmp_path, capsys):
    assert main(["pack", str(face_folder), "--out", str(tmp_path / "p"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()


def test_a_finished_pack_and_a_foreign_folder_are_never_overwritten(
    packed, face_folder, tmp_path, capsys
):
    before = {p.name: p.stat().st_mtime_ns for p in packed.iterdir()}
    assert main(["pack", str(face_folder), "--out", str(packed), "--resolution", "16"]) == 2
    assert "already holds a packed dataset" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in packed.iterdir()} == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert (
        main(["pack", str(face_folder), "--out", str(tmp_path / "mine"), "--resolution", "16"]) == 2
    )
    assert "exists and is not empty" in capsys.readouterr().err


def _indices(images: PackedImages, batch: int, start: int, steps: int, pipeline=0, pipelines=1):
    stream = images.stream(
        batch, seed=3, flip=True, start_step=start, pipeline=pipeline, pipelines=pipelines
    )
    return [[int(i) for i in index] for _, index in stream.take(steps).as_numpy_iterator()]


def test_one_epoch_streams_every_image_once_and_the_next_epoch_another_order(packed):
    images = PackedImages(read_pack_info(packed), shuffle_window=4, with_index=True)
    batches = _indices(images, 4, 0, 12)  # 24 images: two epochs of 6 batches
    first, second = sum(batches[:6], []), sum(batches[6:], [])
    assert sorted(first) == sorted(second) == list(range(24))
    assert first != second


def test_streamed_batches_resume_at_any_step_exactly(packed):
    """Batch k after starting at step s is batch s + k of a run started at 0 (images too)."""
    images = PackedImages(read_pack_info(packed), shuffle_window=4, with_index=True)
    whole = list(images.batches(5, seed=3, flip=True, start_step=0).take(14).as_numpy_iterator())
    for start in (1, 4, 5, 9):  # 24 images, batch 5: epochs and shards end mid-batch
        resumed = images.batches(5, seed=3, flip=True, start_step=start)
        for (image, index), (want_image, want_index) in zip(
            resumed.take(14 - start).as_numpy_iterator(), whole[start:]
        ):
            np.testing.assert_array_equal(index, want_index)
            np.testing.assert_array_equal(image, want_image)  # flips too


def test_two_pipelines_read_disjoint_shards_that_cover_the_set(packed):
    images = PackedImages(read_pack_info(packed), shuffle_window=4, with_index=True)
    assert images.pipeline_shards(0, 2) == [0, 2, 4] and images.pipeline_shards(1, 2) == [1, 3]
    mine = sum(_indices(images, 2, 0, 7, pipeline=0, pipelines=2), [])  # 14 images
    theirs = sum(_indices(images, 2, 0, 5, pipeline=1, pipelines=2), [])  # 10 images
    assert not set(mine) & set(theirs) and sorted(mine + theirs) == list(range(24))
    with pytest.raises(DataError, match="5 shard.s. for 6 workers"):
        images.pipeline_shards(0, 6)


def test_the_config_must_fit_the_pack(packed):
    config = tiny_config(str(packed))
    config, images = open_packed(config)
    assert config.model.channels == 3 and not images.conditional
    with pytest.raises(ConfigError, match="holds 16 px images: train at 16 or pack again"):
        open_packed(config.with_overrides({"model.resolution": 32}))
    with pytest.raises(ConfigError, match="carries its own labels; set data.labels = packed"):
        open_packed(config.with_overrides({"data.labels": r"pattern:(?P<a>\d)"}))
    with pytest.raises(ConfigError, match="has no labels: pack it again with --labels"):
        open_packed(config.with_overrides({"data.labels": "packed"}))
    with pytest.raises(DataError, match="for 8 workers"):
        open_packed(config, workers=8)


def test_a_labelled_pack_keeps_each_images_labels(tmp_path):
    folder = tmp_path / "labelled"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        gender, age = i % 2, 10 + 5 * i
        pixels = np.full((20, 20, 3), 40 + 180 * gender, np.uint8) + rng.integers(
            0, 5, (20, 20, 3), dtype=np.uint8
        )
        Image.fromarray(pixels).save(folder / f"{age}_{gender}_x.png")
    info = _pack(
        folder,
        tmp_path / "pack",
        labels=r"pattern:^(?P<age>\d+)_(?P<gender>\d)_",
        label_bins="age=0,40,100",
        images_per_shard=4,
    )
    assert info.label_classes == "age:2,gender:2" and info.labelled
    for image, _, (_age, gender) in _records(tmp_path / "pack"):
        assert gender == int(image.mean() > 128)  # bright images are gender 1
    config, images = open_packed(
        tiny_config(str(tmp_path / "pack")).with_overrides({"data.labels": "packed"})
    )
    pixels, labels = images.sample(12, seed=0, part=0)
    assert labels.shape == (12, 2) and (labels[:, 1] == (pixels.mean(axis=(1, 2, 3)) > 128)).all()


def test_inspect_data_describes_a_pack(packed, capsys):
    assert main(["inspect-data", str(packed)]) == 0
    out = capsys.readouterr().out
    assert "24 images at 16 px, 5 shard(s)" in out and "usable: 24 images" in out


def test_evaluations_real_images_can_come_from_a_pack(packed):
    from facegan.evaluate import real_image_set

    images = real_image_set(str(packed), 16, 3, 10, seed=1)
    assert images.pixels.shape == (10, 16, 16, 3)
    other = real_image_set(str(packed), 16, 3, 10, seed=1, skip=10)
    assert not {p.tobytes() for p in images.pixels} & {p.tobytes() for p in other.pixels}
    assert real_image_set(str(packed), 32, 1, 4).pixels.shape == (4, 32, 32, 1)


@pytest.mark.integration
def test_training_streams_a_pack_and_resumes_exactly(packed, tmp_path):
    """N steps in one go equal N/2 + resume + N/2 on a packed dataset."""
    config = tiny_config(str(packed), steps=6, checkpoint_every=3)
    one = facegan.train(config, tmp_path / "one", progress=False)
    half = facegan.train(
        config.with_overrides({"train.steps": 3}), tmp_path / "two", progress=False
    )
    two = facegan.resume(half.directory, steps=6, progress=False)
    reader = [tf.train.load_checkpoint(str(run.latest_checkpoint())) for run in (one, two)]
    names = [n for n in reader[0].get_variable_to_shape_map() if "OBJECT_GRAPH" not in n]
    assert len(names) > 20
    for name in names:
        np.testing.assert_array_equal(reader[0].get_tensor(name), reader[1].get_tensor(name))
    log = (one.directory / "train.log").read_text()
    assert "data: 24 images from packed dataset" in log


@pytest.mark.integration
def test_a_large_folder_says_once_that_packing_would_help(face_folder, tmp_path):
    config = tiny_config(str(face_folder), steps=1).with_overrides(
        {"data.pack_above_gb": 1e-6}
    )  # 1 kB: the 24 tiny images are "large"
    run = facegan.train(config, tmp_path / "run", progress=False)
    log = (run.directory / "train.log").read_text()
    assert log.count("`facegan pack SOURCE --out DIR --resolution 16` once") == 1
