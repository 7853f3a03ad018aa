"""facegan export: SavedModel (TF Serving layout), TFLite and Keras; same images as generate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import facegan
from conftest import tiny_config
from facegan.cli import main

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration

# Loads a SavedModel with TensorFlow alone: importing facegan would fail loudly.
_CLEAN_PROCESS = textwrap.dedent("""
    import sys

    class _NoFacegan:
        def find_spec(self, name, path=None, target=None):
            if name == "facegan" or name.startswith("facegan."):
                raise ImportError("facegan must not be imported here")
            return None

    sys.meta_path.insert(0, _NoFacegan())
    import numpy as np
    import tensorflow as tf

    export_dir, inputs, outputs = sys.argv[1:4]
    given = dict(np.load(inputs))
    model = tf.saved_model.load(export_dir)
    extra = {"labels": tf.constant(given["labels"])} if "labels" in given else {}
    results = {
        "latent": model.signatures["from_latent"](latent=tf.constant(given["latent"]), **extra),
        "seed": model.signatures["serving_default"](seed=tf.constant(given["seed"]), **extra),
        "truncated": model.signatures["from_latent_truncated"](
            latent=tf.constant(given["latent"]), truncation=tf.constant(0.6), **extra),
    }
    assert "facegan" not in sys.modules
    np.savez(outputs, **{k: v["images"].numpy() for k, v in results.items()})
""")


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """The tiny run exported as a SavedModel through the CLI: (run, NAME dir, version dir)."""
    out = tmp_path_factory.mktemp("export") / "faces"
    assert (
        main(["export", "--run", str(tiny_run), "--format", "savedmodel", "--out", str(out)]) == 0
    )
    run = facegan.load(tiny_run)
    return run, out, out / str(run.step)


def _run_clean_process(export_dir: Path, tmp_path: Path, **inputs) -> dict[str, np.ndarray]:
    np.savez(tmp_path / "inputs.npz", **inputs)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _CLEAN_PROCESS,
            str(export_dir),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "outputs.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(tmp_path / "outputs.npz"))


def test_savedmodel_layout_is_what_tensorflow_serving_expects(exported):
    run, name_dir, version_dir = exported
    assert [p.name for p in name_dir.iterdir()] == [str(run.step)]  # no staging folder left
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables").is_dir()
    info = json.loads((version_dir / "assets.extra" / "facegan.json").read_text())
    assert info["latent_dim"] == 16 and info["resolution"] == 16 and info["step"] == run.step
    assert info["sampled_from"] == "generator_ema" and info["attributes"] == []


def test_clean_process_gives_exactly_the_images_of_generate(exported, tmp_path):
    run, _, version_dir = exported
    latents = run.latents(12, seed=4)
    seeds = np.array([0, 5, 123456789012], np.int64)
    out = _run_clean_process(version_dir, tmp_path, latent=latents, seed=seeds)
    np.testing.assert_array_equal(out["latent"], run.generate(12, seed=4))
    assert out["latent"].dtype == np.uint8 and out["latent"].shape == (12, 16, 16, 3)
    np.testing.assert_array_equal(
        out["seed"], run.generate_from_latents(run.latents_for_seeds(seeds))
    )
    np.testing.assert_array_equal(out["seed"][1], run.generate(1, seed=5)[0])
    np.testing.assert_array_equal(
        out["truncated"], run.generate_from_latents(latents, truncation=0.6)
    )
    assert not np.array_equal(out["truncated"], out["latent"])


def test_saved_model_cli_lists_the_signatures(exported):
    _, _, version_dir = exported
    cli = shutil.which("saved_model_cli")
    command = [cli] if cli else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    shown = subprocess.run(
        command + ["show", "--dir", str(version_dir), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in (
        "serving_default",
        "from_seed",
        "from_seed_truncated",
        "from_latent",
        "from_latent_truncated",
    ):
        assert f"signature_def['{name}']" in shown.stdout
    assert "dtype: DT_UINT8" in shown.stdout and "dtype: DT_INT64" in shown.stdout


def test_an_existing_version_is_never_overwritten(exported, capsys):
    run, name_dir, version_dir = exported
    before = sorted(str(p) for p in name_dir.rglob("*"))
    code = main(
        ["export", "--run", str(run.directory), "--format", "savedmodel", "--out", str(name_dir)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err and "--version" in err and err.count("\n") == 1
    assert sorted(str(p) for p in name_dir.rglob("*")) == before


def test_a_new_version_goes_beside_the_old(exported, tmp_path):
    run, name_dir, _ = exported
    copy = tmp_path / "faces"
    shutil.copytree(name_dir, copy)
    assert (
        main(
            [
                "export",
                "--run",
                str(run.directory),
                "--format",
                "savedmodel",
                "--out",
                str(copy),
                "--version",
                "7",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in copy.iterdir()) == sorted([str(run.step), "7"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "tflite", "--out", "x.keras"], "must be a .tflite file"),
        (["--format", "keras", "--version", "3", "--out", "x.keras"], "--version applies to"),
        (
            ["--format", "onnx"],
            "invalid choice: 'onnx' (choose from 'savedmodel', 'tflite', 'keras')",
        ),
    ],
)
def test_bad_requests_are_one_line_errors(tiny_run, capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["export", "--run", str(tiny_run)] + argv)
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_run_without_checkpoint_is_refused_before_writing(tmp_path, capsys):
    from facegan.artifacts.rundir import create_run_dir

    paths = create_run_dir(tmp_path / "empty", config=tiny_config())
    code = main(["export", "--run", str(paths.root), "--format", "savedmodel"])
    assert code == 2 and "no checkpoint" in capsys.readouterr().err
    assert not (paths.root / "export").exists()


def test_tflite_agrees_with_generate(exported, tmp_path):
    import tensorflow as tf

    run, _, _ = exported
    out = tmp_path / "faces.tflite"
    assert (
        main(["export", "--run", str(run.directory), "--format", "tflite", "--out", str(out)]) == 0
    )
    interpreter = tf.lite.Interpreter(model_path=str(out))
    assert set(interpreter.get_signature_list()) == {"from_latent", "from_latent_truncated"}
    latents = run.latents(8, seed=2)
    got = interpreter.get_signature_runner("from_latent")(latent=latents)["images"]
    want = run.generate(8, seed=2)
    assert got.dtype == np.uint8 and got.shape == want.shape
    close = np.abs(got.astype(int) - want.astype(int)) <= 1
    assert close.mean() >= 0.99, close.mean()
    truncated = interpreter.get_signature_runner("from_latent_truncated")(
        latent=latents, truncation=np.array(0.5, np.float32)
    )["images"]
    close = (
        np.abs(
            truncated.astype(int) - run.generate_from_latents(latents, truncation=0.5).astype(int)
        )
        <= 1
    )
    assert close.mean() >= 0.99, close.mean()
    assert not np.array_equal(truncated, got)


def test_keras_file_reloads_to_the_same_generator(exported, tmp_path):
    import keras

    run, _, _ = exported
    out = tmp_path / "g.keras"
    assert (
        main(["export", "--run", str(run.directory), "--format", "keras", "--out", str(out)]) == 0
    )
    loaded = keras.models.load_model(out)
    latents = run.latents(4, seed=1)
    np.testing.assert_allclose(
        loaded(latents, training=False).numpy(),
        run.generator()(latents, training=False).numpy(),
        atol=1e-6,
    )


def test_conditional_export_takes_labels(tiny_conditional_run, tmp_path):
    run = facegan.load(tiny_conditional_run)
    out = tmp_path / "cond"
    assert (
        main(["export", "--run", str(run.directory), "--format", "savedmodel", "--out", str(out)])
        == 0
    )
    version_dir = out / str(run.step)
    info = json.loads((version_dir / "assets.extra" / "facegan.json").read_text())
    assert [a["name"] for a in info["attributes"]] == ["age", "gender"]
    assert (
        info["attributes"][1]["classes"] == ["gender 0", "gender 1"]
        or len(info["attributes"][1]["classes"]) == 2
    )
    latents = run.latents(6, seed=3)
    labels = run.labels_for(6, seed=3, request={"gender": "1"})
    seeds = np.array([1, 2, 3, 4, 5, 6], np.int64)
    got = _run_clean_process(version_dir, tmp_path, latent=latents, seed=seeds, labels=labels)
    np.testing.assert_array_equal(got["latent"], run.generate_from_latents(latents, labels=labels))
    np.testing.assert_array_equal(
        got["seed"], run.generate_from_latents(run.latents_for_seeds(seeds), labels=labels)
    )


def test_exported_files_get_the_usual_permissions(tiny_run, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = tmp_path / "faces"
        assert (
            main(["export", "--run", str(tiny_run), "--format", "savedmodel", "--out", str(out)])
            == 0
        )
        assert (
            main(
                [
                    "export",
                    "--run",
                    str(tiny_run),
                    "--format",
                    "tflite",
                    "--out",
                    str(tmp_path / "faces.tflite"),
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    paths = [out, *out.rglob("*"), tmp_path / "faces.tflite"]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert all(mode == (0o755 if p.is_dir() else 0o644) for p, mode in modes.items()), {
        str(p): oct(m) for p, m in modes.items() if m not in (0o755, 0o644)
    }
    assert any(p.name == "saved_model.pb" for p in paths)
