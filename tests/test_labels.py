"""Class labels: parsing names and CSV files, bins, requests, and labels in the input pipeline."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA
from facegan.config import DataConfig
from facegan.data import open_source
from facegan.data.labels import LabelError, label_items, parse_label_requests, schema_from_config
from facegan.data.pipeline import load_training_images, training_dataset

UTK_PATTERN = r"pattern:^(?P<age>\d+)_(?P<gender>\d)_(?P<race>\d)_"
AGE_BINS = "age=0,13,20,30,40,50,60,120"
HERE = Path(__file__).resolve().parent


def _config(labels=UTK_PATTERN, bins="", values="", source="unused"):
    return DataConfig(source=source, labels=labels, label_bins=bins, label_values=values)


def _utk_name(age, gender, race, when="20170109150557335"):
    return f"{age}_{gender}_{race}_{when}.jpg.chip.jpg"


# ------------------------------------------------------------------ file names


def test_utkface_names_give_attributes_in_group_order():
    names = [_utk_name(25, 1, 0), _utk_name(3, 0, 4), _utk_name(70, 1, 2), _utk_name(25, 0, 0)]
    result = label_items(names, _config(bins=AGE_BINS))
    assert result.schema.names == ["age", "gender", "race"]
    assert result.schema.label_classes == "age:7,gender:2,race:3"
    assert result.schema.label_values == "gender=0,1;race=0,2,4"  # sorted distinct values
    np.testing.assert_array_equal(result.labels, [[2, 1, 0], [0, 0, 2], [6, 1, 1], [2, 0, 0]])
    assert result.labels.dtype == np.int32 and result.labelled.all() and not result.unlabelled


def test_names_without_a_match_are_reported_not_raised():
    names = [
        "25_1_0_2017.jpg",
        "61_3_20170109150557335.jpg.chip.jpg",
        "readme_photo.png",
        "sub/30_0_1_2017.jpg",
    ]  # a `^` pattern also matches a file name in a sub-folder
    result = label_items(names, _config())
    np.testing.assert_array_equal(result.labelled, [True, False, False, True])
    assert [name for name, _ in result.unlabelled] == names[1:3]
    assert all("does not match" in reason for _, reason in result.unlabelled)
    assert (result.labels[~result.labelled] == -1).all()


def test_optional_group_that_did_not_take_part_is_reported():
    optional = _config(r"pattern:(?P<id>[a-z])(_(?P<n>\d))?")
    result = label_items(["a_1.png", "b.png", "c_2.png"], optional)
    np.testing.assert_array_equal(result.labelled, [True, False, True])
    assert "without n" in result.unlabelled[0][1]


def test_real_utkface_names_give_plausible_classes():
    folder = SHARED_DATA / "utkface"
    if not folder.is_dir():
        pytest.skip("shared UTKFace data not present")
    names = open_source(str(folder)).names  # listed, not decoded
    result = label_items(names, _config(bins=AGE_BINS))
    classes = dict(part.split(":") for part in result.schema.label_classes.split(","))
    assert classes == {"age": "7", "gender": "2", "race": "5"}
    assert result.schema.label_values == "gender=0,1;race=0,1,2,3,4"
    assert len(result.unlabelled) <= len(names) // 100  # a few odd names at most
    labels = result.labels[result.labelled]
    for column, classes in enumerate((7, 2, 5)):
        counts = np.bincount(labels[:, column], minlength=classes)
        assert len(counts) == classes and (counts > 0).all()
    assert 0.3 < labels[:, 1].mean() < 0.7  # both genders well represented
    unbinned = label_items(names, _config())
    assert int(unbinned.schema.label_classes.split(",")[0].split(":")[1]) > 50  # distinct ages


# ------------------------------------------------------------------ bins and values


def test_bins_are_half_open_and_outside_values_unlabelled():
    names = [_utk_name(age, 0, 0) for age in (0, 12, 13, 119, 120, 500)] + [_utk_name(5, 1, 1)]
    result = label_items(names, _config(bins=AGE_BINS))
    np.testing.assert_array_equal(result.labelled, [True, True, True, True, False, False, True])
    np.testing.assert_array_equal(result.labels[result.labelled, 0], [0, 0, 1, 6, 0])
    reasons = dict(result.unlabelled)
    assert "outside data.label_bins [0, 120)" in reasons[names[4]]


def test_categorical_values_sort_numerically_when_all_are_numbers(tmp_path):
    names = [f"x_{n}.png" for n in (10, 2, 1, 2)]
    result = label_items(names, _config(r"pattern:x_(?P<n>\d+)"))
    assert result.schema.label_values == "n=1,2,10"
    np.testing.assert_array_equal(result.labels[:, 0], [2, 1, 0, 1])
    mixed = label_items(["x_10.png", "x_2.png", "x_b.png"], _config(r"pattern:x_(?P<n>\w+)\."))
    assert mixed.schema.label_values == "n=10,2,b"  # text order


def test_stored_values_keep_class_indices_of_a_resumed_run():
    names = [_utk_name(20, 1, 3), _utk_name(20, 0, 1), _utk_name(20, 1, 4)]
    result = label_items(names, _config(bins=AGE_BINS, values="gender=0,1;race=0,1,2,3"))
    assert result.schema.label_values == "gender=0,1;race=0,1,2,3"
    np.testing.assert_array_equal(result.labelled, [True, True, False])  # race 4 is new
    np.testing.assert_array_equal(result.labels[:2, 2], [3, 1])
    assert "not one of the run's values" in result.unlabelled[0][1]


def test_settings_that_cannot_work_are_one_line_errors():
    names = [_utk_name(20, 1, 0), _utk_name(30, 1, 2)]
    with pytest.raises(LabelError, match="single class .'1'. over the 2 labelled images"):
        label_items(names, _config())  # every gender is 1
    with pytest.raises(LabelError, match="`data.label_bins` names `height`"):
        label_items(names, _config(bins="height=0,1,2"))
    with pytest.raises(LabelError, match="gives labels to none of the 2 images .first: "):
        label_items(["a.png", "b.png"], _config())


# ------------------------------------------------------------------ CSV


def _write_csv(path, rows):
    path.write_text("\n".join(",".join(map(str, row)) for row in rows) + "\n", encoding="utf-8")
    return path


def test_csv_rows_by_relative_path_or_file_name(tmp_path):
    csv_path = _write_csv(
        tmp_path / "attrs.csv",
        [
            ["file", "smiling", "age"],
            ["a/one.png", "yes", 30],
            ["two.png", "no", 41],  # a bare file name finds sub/two.png
            ["three.png", "", 20],  # an empty cell: no value
            ["dup.png", "yes", 1],  # two items share this file name: ambiguous
        ],
    )
    names = ["a/one.png", "sub/two.png", "three.png", "four.png", "x/dup.png", "y/dup.png"]
    result = label_items(names, _config(f"csv:{csv_path}", bins="age=0,40,80"))
    assert result.schema.label_classes == "smiling:2,age:2"
    assert result.schema.label_values == "smiling=no,yes"
    np.testing.assert_array_equal(result.labelled, [True, True, False, False, False, False])
    np.testing.assert_array_equal(result.labels[:2], [[1, 0], [0, 1]])
    reasons = dict(result.unlabelled)
    assert "no value for smiling" in reasons["three.png"]
    assert "no row in attrs.csv" in reasons["four.png"]
    assert "matches 2 files" in reasons["x/dup.png"]


def test_bad_csv_files_are_label_errors(tmp_path):
    with pytest.raises(LabelError, match="does not exist"):
        label_items(["a.png"], _config(f"csv:{tmp_path / 'missing.csv'}"))
    only_names = _write_csv(tmp_path / "names.csv", [["file"], ["a.png"]])
    with pytest.raises(LabelError, match="at least two columns"):
        label_items(["a.png"], _config(f"csv:{only_names}"))
    bad_header = tmp_path / "header.csv"
    bad_header.write_text('file,"hair colour",x\na.png,1,2\n')
    with pytest.raises(LabelError, match="attribute columns need distinct names"):
        label_items(["a.png"], _config(f"csv:{bad_header}"))


# ------------------------------------------------------------------ requests


def _schema():
    return schema_from_config(
        _config(bins=AGE_BINS, values="gender=0,1;race=0,1,2,3,4"), "age:7,gender:2,race:5"
    )


def test_requests_map_to_class_indices():
    schema = _schema()
    assert schema.encode({"gender": "1", "age": "25"}) == [2, 1, None]
    assert schema.encode({"age": "13", "race": "4"}) == [1, None, 4]
    assert schema.encode({"gender": "1.0"}) == [None, 1, None]  # numbers match numbers
    assert schema.encode(parse_label_requests(["gender=0", " race = 2 "])) == [None, 0, 2]


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            {"age": "130"},
            "label age=130: age must be a number from 0 to below 120 "
            "(classes 0–13, 13–20, 20–30, 30–40, 40–50, 50–60, 60–120)",
        ),
        ({"age": "old"}, "age must be a number from 0 to below 120"),
        ({"gender": "2"}, "label gender=2: gender must be one of 0, 1"),
        (
            {"hair": "red"},
            "label hair=red: the run has no label attribute `hair`; "
            "its attributes: age, gender, race",
        ),
    ],
)
def test_bad_requests_name_the_attribute_and_what_it_allows(request_, message):
    with pytest.raises(LabelError) as error:
        _schema().encode(request_)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_request_syntax_errors():
    with pytest.raises(LabelError, match="must be NAME=VALUE"):
        parse_label_requests(["gender"])
    with pytest.raises(LabelError, match="requested twice"):
        parse_label_requests(["gender=0", "gender=1"])


def test_class_names_for_sample_grids():
    schema = _schema()
    assert schema.class_names("age") == [
        "age 0–13",
        "age 13–20",
        "age 20–30",
        "age 30–40",
        "age 40–50",
        "age 50–60",
        "age 60–120",
    ]
    assert schema.class_names("gender") == ["gender 0", "gender 1"]
    with pytest.raises(LabelError, match="no label attribute `hair`"):
        schema.class_names("hair")


def test_schema_from_config_refuses_settings_that_disagree():
    with pytest.raises(LabelError, match="`race`, which neither"):
        schema_from_config(_config(values="gender=0,1"), "gender:2,race:5")
    with pytest.raises(LabelError, match="gives `gender` 3 classes but the data settings give"):
        schema_from_config(_config(values="gender=0,1"), "gender:3")


# ------------------------------------------------------------------ loading a folder


def test_load_training_images_attaches_labels_and_skips_unlabelled(tmp_path):
    folder = tmp_path / "utk"
    folder.mkdir()
    ages = {
        _utk_name(25, 1, 0): 80,
        _utk_name(8, 0, 1): 160,
        _utk_name(65, 1, 1): 240,
        _utk_name(35, 0, 0): 40,
    }
    for name, gray in ages.items():
        Image.new("RGB", (20, 20), (gray, gray, gray)).save(folder / name, format="JPEG")
    Image.new("RGB", (20, 20)).save(folder / "61_3_20170109150557335.jpg.chip.jpg", "JPEG")
    Image.new("RGB", (20, 20)).save(folder / _utk_name(130, 0, 0), "JPEG")  # outside the bins
    (folder / _utk_name(40, 1, 0)).write_bytes(b"broken")  # not an image

    decoded = load_training_images(
        open_source(str(folder)),
        _config(bins=AGE_BINS, source=str(folder)),
        16,
        3,
        cache_dir=tmp_path / "cache",
    )
    assert sorted(decoded.names) == sorted(ages)
    assert decoded.labels.shape == (4, 3) and decoded.labels.dtype == np.int32
    assert decoded.label_classes == "age:7,gender:2,race:2"
    assert decoded.label_values == "gender=0,1;race=0,1"
    for name, pixels, row in zip(decoded.names, decoded.pixels, decoded.labels):
        assert abs(int(pixels.mean()) - ages[name]) < 8  # labels sit beside their own image
        age, gender, race = (int(part) for part in name.split("_")[:3])
        assert list(row) == [
            np.searchsorted([0, 13, 20, 30, 40, 50, 60, 120], age, "right") - 1,
            gender,
            race,
        ]
    failures = dict(decoded.failures)
    assert set(failures) == {
        "61_3_20170109150557335.jpg.chip.jpg",
        _utk_name(130, 0, 0),
        _utk_name(40, 1, 0),
    }
    assert "does not match" in failures["61_3_20170109150557335.jpg.chip.jpg"]
    assert "outside data.label_bins" in failures[_utk_name(130, 0, 0)]


def test_load_without_labels_is_unchanged(face_folder, tmp_path):
    decoded = load_training_images(
        open_source(str(face_folder)),
        DataConfig(source=str(face_folder)),
        16,
        3,
        cache_dir=tmp_path,
    )
    assert decoded.labels is None and decoded.label_classes is None and decoded.label_values == ""


def test_load_with_no_labelled_image_is_one_data_error(face_folder, tmp_path):
    from facegan.data import DataError

    with pytest.raises(DataError, match="gives labels to none of the 24 images"):
        load_training_images(
            open_source(str(face_folder)),
            _config(source=str(face_folder)),
            16,
            3,
            cache_dir=tmp_path,
        )


# ------------------------------------------------------------------ the tf.data pipeline


def _indexed(count):
    """Image i is filled with the value i (so a batch says which images it holds)."""
    pixels = np.arange(count, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    labels = np.stack([np.arange(count), (np.arange(count) * 7) % 5], axis=1).astype(np.int32)
    return pixels, labels


def _index_of(images):
    return np.rint((images[:, 0, 0, 0] + 1) * 255 / 2).astype(int)


def _take(dataset, count):
    return [
        tuple(part.numpy() for part in batch) if isinstance(batch, tuple) else batch.numpy()
        for batch, _ in zip(dataset, range(count))
    ]


def test_training_dataset_yields_labels_aligned_with_images():
    pixels, labels = _indexed(13)  # 13: batches straddle epochs
    with_labels = _take(training_dataset(pixels, 4, seed=2, flip=True, labels=labels), 8)
    without = _take(training_dataset(pixels, 4, seed=2, flip=True), 8)
    for (images, classes), plain in zip(with_labels, without):
        assert classes.shape == (4, 2) and classes.dtype == np.int32
        np.testing.assert_array_equal(images, plain)  # the same order as without labels
        np.testing.assert_array_equal(classes, labels[_index_of(images)])


def test_training_dataset_with_labels_resumes_at_the_exact_step():
    pixels, labels = _indexed(13)
    full = _take(training_dataset(pixels, 4, seed=5, flip=True, labels=labels), 9)
    resumed = _take(training_dataset(pixels, 4, seed=5, flip=True, start_step=6, labels=labels), 3)
    for (images, classes), (again, again_classes) in zip(full[6:], resumed):
        np.testing.assert_array_equal(images, again)
        np.testing.assert_array_equal(classes, again_classes)


def test_distributed_batches_with_labels_on_one_device():
    import tensorflow as tf

    from facegan.data.pipeline import DecodedImages
    from facegan.training.distribute import distributed_batches

    pixels, labels = _indexed(13)
    batches = distributed_batches(
        tf.distribute.get_strategy(), DecodedImages.from_arrays(pixels, labels), 4, 1, False, 3
    )
    reference = training_dataset(pixels, 4, seed=1, flip=False, start_step=3, labels=labels)
    for (images, classes), (want, want_classes) in zip(
        (next(batches) for _ in range(3)), _take(reference, 3)
    ):
        np.testing.assert_array_equal(images.numpy(), want)
        np.testing.assert_array_equal(classes.numpy(), want_classes)
    plain = distributed_batches(
        tf.distribute.get_strategy(), DecodedImages.from_arrays(pixels), 4, 1, False, 3
    )
    assert next(plain).shape == (4, 4, 4, 1)  # without labels: images alone, as before


@pytest.mark.integration
def test_distributed_batches_split_labels_like_images_over_two_replicas():
    result = subprocess.run(
        [sys.executable, str(HERE / "distribute" / "replica_slices_script.py"), "labels"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "replicas": 2,
        "same": True,
        "aligned": True,
        "label_shape": [4, 2],
        "label_dtype": "int32",
    }


def test_label_names_name_the_classes_everywhere_they_are_shown():
    from facegan.config import ConfigError, DataConfig
    from facegan.data.labels import LabelError, schema_from_config

    data = DataConfig(
        labels="pattern:^(?P<age>\\d+)_(?P<gender>\\d)_",
        label_bins="age=0,20,120",
        label_values="gender=0,1",
        label_names="gender=male,female;age=young,older",
    )
    schema = schema_from_config(data, "age:2,gender:2")
    assert schema.class_names("gender") == ["gender male", "gender female"]
    assert schema.class_names("age") == ["age young", "age older"]
    # a name is a value too: --label gender=female, and the raw values still work
    assert schema.encode({"gender": "female", "age": "young"}) == [0, 1]
    assert schema.encode({"gender": "1", "age": "25"}) == [1, 1]
    with pytest.raises(LabelError, match="gives `gender` 3 names but it has 2 classes"):
        schema_from_config(
            DataConfig(label_values="gender=0,1", label_names="gender=a,b,c"), "gender:2"
        )
    with pytest.raises(LabelError, match="data.label_names names `race`"):
        schema_from_config(
            DataConfig(label_values="gender=0,1", label_names="race=a,b"), "gender:2"
        )
    with pytest.raises(ConfigError, match="data.label_names"):
        DataConfig(label_names="gender")
