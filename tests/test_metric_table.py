"""The metric table (`facegan.metrics`): what `Evaluator.compare` computes and
`format_table` prints, checked against the metric functions called directly.

No Inception network and no face detector: features and face scores are stubs,
so these run in a second.
"""

import numpy as np
import pytest

from facegan.evaluate import Evaluator, ImageSet, format_table
from facegan.metrics import FEATURE_METRICS, METRICS


class _StubDetector:
    """Finds a face in every other image."""

    def detect_faces(self, images, threshold, batch_size):
        return np.arange(len(images)) % 2 == 0


def _stub_evaluator(monkeypatch, features: dict) -> Evaluator:
    evaluator = Evaluator()
    evaluator._detector = _StubDetector()
    monkeypatch.setattr(evaluator, "features", lambda images: features[images.description])
    return evaluator


@pytest.fixture
def sets(monkeypatch):
    rng = np.random.default_rng(0)
    features = {
        "generated": rng.normal(size=(40, 8)),
        "real": rng.normal(0.5, 1.0, (30, 8)),
        "train": rng.normal(0.2, 1.0, (36, 8)),
    }
    pixels = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    images = {name: ImageSet(pixels, name) for name in features}
    return _stub_evaluator(monkeypatch, features), images, features


def test_compare_fills_every_result_key_from_its_function(sets):
    from facegan.metrics.fid import fid
    from facegan.metrics.kid import kid_estimate
    from facegan.metrics.memorization import memorization
    from facegan.metrics.precision_recall import precision_recall

    evaluator, images, features = sets
    results = evaluator.compare(images["generated"], images["real"], METRICS, images["train"])
    fake, real, train = features["generated"], features["real"], features["train"]
    found = memorization(fake, train)
    expected = {
        "num_generated": 40,
        "num_real": 30,
        "fid": fid(real, fake),
        # the registry's KID: subsets of half the smaller set (15 of 30), so they differ
        "kid": kid_estimate(real, fake)[0],
        "kid_std": kid_estimate(real, fake)[1],
        "kid_subset": kid_estimate(real, fake)[2],
        "precision": precision_recall(real, fake)[0],
        "recall": precision_recall(real, fake)[1],
        "face_rate": 0.6,
        "memorization": found.share,
        "memorization_threshold": found.threshold,
        "memorization_pairs": found.closest(8),
    }
    timings = [key for key in results if key.endswith("_s")]
    assert timings == ["features_s", "face_rate_s"]
    assert list(results) == list(expected) + timings  # the order JSON output shows
    for key, value in expected.items():
        assert results[key] == value, key


def test_memorization_defaults_to_the_real_set(sets):
    from facegan.metrics.memorization import memorization

    evaluator, images, features = sets
    results = evaluator.compare(images["generated"], images["real"], ["memorization"])
    found = memorization(features["generated"], features["real"])
    assert results["memorization"] == found.share
    assert set(results) == {
        "num_generated",
        "num_real",
        "memorization",
        "memorization_threshold",
        "memorization_pairs",
        "features_s",
    }


def test_face_rate_alone_extracts_no_features(sets):
    evaluator, images, _ = sets
    evaluator.features = None  # called: a TypeError
    results = evaluator.compare(images["generated"], images["real"], ["face_rate"])
    assert set(results) == {"num_generated", "num_real", "face_rate", "face_rate_s"}
    assert (results["num_generated"], results["num_real"], results["face_rate"]) == (5, 5, 0.6)


def test_feature_metrics_are_the_ones_that_need_inception():
    assert FEATURE_METRICS == {"fid", "kid", "pr", "memorization"}
    assert METRICS == ("fid", "kid", "pr", "face_rate", "memorization")


def test_format_table_labels_and_formats():
    results = {
        "fid": 12.3456,
        "kid": 0.0123456,
        "kid_std": 0.000987654,
        "precision": 0.71234,
        "recall": 0.5,
        "face_rate": 0.96875,
        "memorization": 0.0125,
        "memorization_threshold": 3.0,
        "num_generated": 100,
        "num_real": 80,
        "features_s": 1.5,
    }
    assert format_table(results, "a vs b").splitlines() == [
        "a vs b",
        "-" * 35,
        "FID              12.35",
        "KID              0.01235 ± 0.00099",
        "precision        0.712",
        "recall           0.500",
        "face rate        0.969",
        "memorized share  0.013",
        "images           100 vs 80",
    ]


def test_format_table_shows_only_what_was_measured():
    text = format_table({"kid": 0.5, "num_generated": 3, "num_real": 4}, "title")
    assert text.splitlines()[2:] == ["KID     0.50000 ± nan", "images  3 vs 4"]


def test_every_row_is_complete_and_its_function_exists():
    import importlib

    from facegan.metrics import METRIC_TABLE
    from facegan.metrics.registry import INPUTS

    keys = [key for row in METRIC_TABLE for key in row.results]
    assert len(keys) == len(set(keys))  # no two metrics write one result
    for row in METRIC_TABLE:
        module, _, name = row.function.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), row.name
        assert set(row.inputs.values()) <= set(INPUTS), row.name
        assert row.lines and {line.key for line in row.lines} <= set(row.results), row.name


def test_the_table_loads_no_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, facegan.metrics as m; m.METRIC_TABLE[0].lines[0].text({'fid': 1.0}); "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_small_sets_get_a_note_under_the_table_saying_what_n_does():
    from facegan.evaluate.reports import format_notes

    results = {"fid": 80.0, "kid": 0.02, "kid_std": 0.004, "kid_subset": 100}
    notes = format_notes({**results, "num_generated": 200, "num_real": 200})
    assert notes == [
        "note: FID from 200 images per set (under 2048, the feature size) comes out higher "
        "than from more images of the same sets; compare FIDs only at equal image counts",
        "note: KID's ± is the spread over 100 subsets of 100 images per set "
        "(half the smaller set, so that subsets differ)",
    ]
    assert (
        format_notes({**results, "kid_subset": 1000, "num_generated": 2048, "num_real": 5000}) == []
    )


def test_the_kid_note_starts_where_kid_estimate_halves_its_subsets():
    from facegan.metrics.kid import SUBSET_SIZE
    from facegan.metrics.registry import REPORT_NOTES

    assert [note.below for note in REPORT_NOTES if note.key == "kid"] == [2 * SUBSET_SIZE]
