"""One seed, one face: the five ways to draw seed s give the same pixels (StyleGAN2-ADA's convention)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facegan
from facegan.artifacts import animation
from facegan.cli import main
from facegan.serve import FaceApp

pytestmark = pytest.mark.integration

SEEDS = [0, 1, 2, 3, 42]


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_generate_page_export_interpolate_and_the_api_agree(tiny_run, tmp_path, capsys):
    run = facegan.load(tiny_run)
    api = run.generate_seeds(SEEDS)
    # the Python API: -n/--seed is a range of seeds, and each seed alone is the same face
    np.testing.assert_array_equal(run.generate(4, seed=0), api[:4])
    np.testing.assert_array_equal(run.generate(1, seed=42)[0], api[4])
    np.testing.assert_array_equal(run.generate(3, seed=1), api[1:4])

    # the CLI: --seeds 0-3,42 writes seed0000.png ... seed0042.png
    out = tmp_path / "faces"
    assert main(["generate", "--run", str(tiny_run), "--seeds", "0-3,42", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png", "seed0042.png"]
    for seed, expected in zip(SEEDS, api):
        np.testing.assert_array_equal(_png((out / f"seed{seed:04d}.png").read_bytes()), expected)

    # the web page's tile for seed s
    app = FaceApp(run)
    for seed, expected in zip(SEEDS, api):
        response = app.respond(f"/api/face.png?seed={seed}")
        assert response.status == 200
        np.testing.assert_array_equal(_png(response.body), expected)

    # an export's from_seed
    export = tmp_path / "export"
    assert (
        main(["export", "--run", str(tiny_run), "--format", "savedmodel", "--out", str(export)])
        == 0
    )
    loaded = tf.saved_model.load(str(export / str(run.step)))
    exported = loaded.signatures["from_seed"](seed=tf.constant(SEEDS, tf.int64))
    np.testing.assert_array_equal(next(iter(exported.values())).numpy(), api)

    # interpolate: the walk's frames at the seeds are those faces
    frames = animation.walk_frames(run, [3, 42, 0], 4)
    np.testing.assert_array_equal(frames[[0, 4, 8]], api[[3, 4, 0]])
    capsys.readouterr()


def test_interpolate_takes_the_generate_seed_syntax(tiny_run, tmp_path):
    out = tmp_path / "walk.gif"
    assert (
        main(
            [
                "interpolate",
                "--run",
                str(tiny_run),
                "--seeds",
                "0-2",
                "--frames",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with Image.open(out) as gif:
        assert gif.n_frames == 5  # 2 frames per segment x 2 segments + the last seed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "5-2"], "a seed range must go up (A-B with A <= B); received '5-2'"),
        (["--seeds", "1,x"], "seeds are integers and ranges like 0-15,42; received 'x'"),
        (["--seeds", "0-100000"], "at most 100000 faces at once"),
        (["--seed", str(2**63 - 1), "-n", "2"], "seeds must be integers from 0 to"),
        (["--seeds", "1,2", "-n", "4"], "give either --seeds or -n/--seed"),
    ],
)
def test_bad_seeds_are_one_line_errors(tiny_run, tmp_path, capsys, argv, message):
    try:
        code = main(["generate", "--run", str(tiny_run), "--out", str(tmp_path / "g.png"), *argv])
    except SystemExit as stop:  # argparse's errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "g.png").exists()
