"""Evaluation orchestration: metric selection, feature caching, run and real-vs-real evaluation.

Tests that need the real FID Inception weights skip with the reason when none are
provisioned (`facegan weights`, which the README's test command and CI run first).
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import facegan
from conftest import tiny_config
from facegan.config import ConfigError
from facegan.evaluate import METRICS, Evaluator, ImageSet, parse_metrics, real_image_set


def test_parse_metrics():
    assert parse_metrics("fid, kid,fid") == ("fid", "kid")
    with pytest.raises(
        ConfigError, match="--metrics must be a comma-separated list of fid, kid, pr"
    ):
        parse_metrics("fid,is")
    with pytest.raises(ConfigError):
        parse_metrics(" , ")


@pytest.mark.integration
def test_cli_knows_every_metric_without_importing_tensorflow():
    # The names come from facegan.metrics (no TensorFlow), not a hand copy.
    code = (
        "import sys, json; from facegan.cli import build_parser; "
        "args = build_parser().parse_args(['evaluate', '--run', 'r']); "
        "print(json.dumps([args.metrics, 'tensorflow' in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [",".join(METRICS), False]


def _fake_inception():
    """A stand-in for the FID network (same input/output shapes) for cache tests."""
    images = keras.Input((299, 299, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(images)
    features = keras.layers.Dense(2048, kernel_initializer=keras.initializers.RandomNormal(seed=1))(
        pooled
    )
    return keras.Model(images, features)


def test_real_features_are_cached_by_content(tmp_path, face_folder, monkeypatch):
    import shutil

    import facegan.data.pipeline

    evaluator = Evaluator(cache_dir=tmp_path / "cache")
    evaluator._inception = _fake_inception()
    first = evaluator.features(real_image_set(str(face_folder), 16, 3, None))
    again = evaluator.features(real_image_set(str(face_folder), 16, 3, None))
    assert evaluator.cache_hits == 1
    np.testing.assert_array_equal(first, again)
    # a cache hit needs no decoding at all (file bytes are hashed, not pixels)
    with monkeypatch.context() as patch:
        patch.setattr(facegan.data.pipeline, "decode_source", lambda *a, **k: 1 / 0)
        np.testing.assert_array_equal(
            evaluator.features(real_image_set(str(face_folder), 16, 3, None)), first
        )
    assert evaluator.cache_hits == 2
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 1
    # other resolution or count: another key
    evaluator.features(real_image_set(str(face_folder), 32, 3, None))
    evaluator.features(real_image_set(str(face_folder), 16, 3, 10))
    assert evaluator.cache_hits == 2
    # change one photo: the cache misses
    changed = tmp_path / "changed"
    shutil.copytree(face_folder, changed)
    Image.new("RGB", (20, 20), (255, 0, 0)).save(changed / "face00.png")
    evaluator.features(real_image_set(str(changed), 16, 3, None))
    assert evaluator.cache_hits == 2
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 4
    # generated images are never cached
    evaluator.features(ImageSet(np.zeros((2, 16, 16, 3), np.uint8), "fake"))
    assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 4


def test_same_dataset_twice_gives_disjoint_parts(face_folder):
    a = real_image_set(str(face_folder), 16, 3, 10, seed=0)
    b = real_image_set(str(face_folder), 16, 3, 10, seed=0, skip=10)
    assert len(a.pixels) == len(b.pixels) == 10
    rows_a = {p.tobytes() for p in a.pixels}
    assert not rows_a & {p.tobytes() for p in b.pixels}
    assert a.content_key != b.content_key


@pytest.fixture(scope="module")
def evaluator():
    from facegan.metrics.inception import WeightsNotFound

    evaluator = Evaluator()
    try:
        evaluator.check_weights()
    except WeightsNotFound as err:
        pytest.skip(f"FID Inception weights not provisioned ({err}); run `facegan weights`")
    return evaluator


@pytest.mark.integration
def test_evaluate_run_logs_and_draws_memorization_pairs(evaluator, tmp_path, face_folder):
    from facegan.artifacts.logs import read_metrics
    from facegan.evaluate import evaluate_run

    run = facegan.train(tiny_config(str(face_folder), steps=2), tmp_path / "r", progress=False)
    results = evaluate_run(run, evaluator, metrics=METRICS, num=12)
    for key in ("fid", "kid", "kid_std", "precision", "recall", "face_rate", "memorization"):
        assert np.isfinite(results[key]), key
    assert results["fid"] > 0 and 0 <= results["face_rate"] <= 1
    record = [r for r in read_metrics(run.paths.metrics) if r.get("event") == "evaluate"][-1]
    assert record["step"] == 2 and record["eval/fid"] == pytest.approx(results["fid"])
    assert record["num_generated"] == 12
    grid = Image.open(results["memorization_grid"])
    assert grid.size[0] == 2 * 18 + 2  # generated | nearest training image


@pytest.mark.integration
def test_in_training_evaluation_keeps_the_best_checkpoint(evaluator, tmp_path, face_folder):
    from facegan.artifacts.logs import read_metrics

    config = tiny_config(str(face_folder), steps=4, eval_every=2, eval_num=8)
    run = facegan.train(config, tmp_path / "r", progress=False)
    evals = [r for r in read_metrics(run.paths.metrics) if r.get("event") == "evaluate"]
    assert [r["step"] for r in evals] == [2, 4]
    best = json.loads((run.directory / "checkpoints" / "best" / "best.json").read_text())
    assert best["fid"] == pytest.approx(min(r["eval/fid"] for r in evals))
    assert (run.directory / "checkpoints" / "best" / f"best-{best['step']}.index").exists()
    # the best checkpoint is a full checkpoint: a generator restores from it
    generated = run.generator(str(run.directory / "checkpoints" / "best" / f"best-{best['step']}"))
    assert generated is not None


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Hides every source of Inception weights (empty cache, no env, no installed package)."""
    from facegan.metrics import inception, inception_weights

    monkeypatch.setenv(inception.ENV_CACHE, str(tmp_path / "empty-cache"))
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(inception_weights, "_installed_pt", lambda: None)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--real", "a"], "two real sets: --real A --real B; received 1 --real"),
        (["evaluate"], "give --run DIR or --model NAME"),
        (["evaluate", "--run", "r", "--real", "a", "--real", "b"], "give one set of real photos"),
        (["evaluate", "--model", "faces-64"], "give the real photos to compare with, --real PATH"),
        (["evaluate", "--real", "a", "--real", "b", "--data", "c"], "--data goes with --run"),
        (
            ["evaluate", "--run", "r", "--metrics", "fid,nope"],
            "--metrics must be a comma-separated list",
        ),
        (
            ["evaluate", "--run", "no-such-run", "--metrics", "face_rate"],
            "run directory 'no-such-run' does not exist",
        ),
    ],
)
def test_evaluate_user_errors(argv, message, capsys, tmp_path, monkeypatch):
    from facegan.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.integration
def test_missing_weights_say_what_to_run_and_create_no_run(
    no_weights, capsys, tmp_path, monkeypatch, face_folder
):
    from facegan.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--real", str(face_folder), "--real", str(face_folder)]) == 2
    assert "run `facegan weights`" in capsys.readouterr().err
    assert main(["train", "--data", str(face_folder), "--eval-every", "2", "--run-dir", "r"]) == 2
    err = capsys.readouterr().err
    assert "run `facegan weights`" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
    # face rate alone needs no Inception weights
    assert (
        main(
            [
                "evaluate",
                "--real",
                str(face_folder),
                "--real",
                str(face_folder),
                "--metrics",
                "face_rate",
                "--resolution",
                "32",
                "--json",
            ]
        )
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    assert 0 <= results["face_rate"] <= 1 and results["num_real"] == 12


@pytest.mark.integration
def test_weights_command_converts_a_local_file(tmp_path, monkeypatch, capsys):
    from facegan.cli import main
    from facegan.metrics import inception

    source = inception.find_weights()
    if source is None:
        pytest.skip("no local FID Inception weights to convert; run `facegan weights`")
    monkeypatch.setenv(inception.ENV_CACHE, str(tmp_path / "cache"))
    assert main(["weights", "--from", str(source), "--no-pip"]) == 0
    written = capsys.readouterr().out.strip()
    assert written == str(tmp_path / "cache" / inception.CACHE_NAME)
    assert inception.find_weights() == tmp_path / "cache" / inception.CACHE_NAME


@pytest.mark.integration
def test_cli_evaluate_real_prints_a_table(evaluator, face_folder, capsys):
    from facegan.cli import main

    assert (
        main(
            [
                "evaluate",
                "--real",
                str(face_folder),
                "--real",
                str(face_folder),
                "--resolution",
                "32",
                "--metrics",
                "fid,kid,pr",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    for label in ("FID", "KID", "precision", "recall", "images"):
        assert label in out
    assert "12 vs 12" in out  # two disjoint halves of the 24 images
