"""`facegan interpolate`: slerp walks through seeds' latents, written as GIF (or MP4)."""

import stat
import sys

import numpy as np
import pytest
from PIL import Image

import facegan
from facegan.artifacts import animation
from facegan.cli import main


@pytest.fixture(scope="module")
def run(tiny_run):
    return facegan.load(tiny_run)


def test_walk_latents_counts_frames_per_segment_and_passes_through_every_key():
    keys = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    walk = animation.walk_latents(keys, 4)
    assert walk.shape == (9, 16)  # 2 segments of 4, then the last key
    for k in range(3):
        np.testing.assert_array_equal(walk[4 * k], keys[k])
    looped = animation.walk_latents(keys, 4, loop=True)
    assert looped.shape == (12, 16)  # 3 segments, the first key not repeated at the end
    np.testing.assert_array_equal(looped[:9], walk)
    # along great circles the norm moves smoothly between the keys' norms
    norms = np.linalg.norm(walk, axis=1)
    assert np.all(norms >= np.linalg.norm(keys, axis=1).min() - 1e-4)
    with pytest.raises(facegan.UserError, match="at least two"):
        animation.walk_latents(keys[:1], 4)


def test_walk_frames_start_at_each_seeds_face(run):
    frames = animation.walk_frames(run, [1, 2, 3], 3)
    assert frames.shape == (7, 16, 16, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[0], run.generate(1, seed=1)[0])
    np.testing.assert_array_equal(frames[3], run.generate(1, seed=2)[0])
    np.testing.assert_array_equal(frames[6], run.generate(1, seed=3)[0])
    assert not np.array_equal(frames[1], frames[0])  # it moves between seeds


def test_conditional_walk_holds_the_requested_labels(tiny_conditional_run):
    run = facegan.load(tiny_conditional_run)
    frames = animation.walk_frames(run, [4, 5], 2, request={"gender": "1"})
    np.testing.assert_array_equal(frames[0], run.generate(1, seed=4, labels={"gender": "1"})[0])
    np.testing.assert_array_equal(
        frames[2], run.generate(1, seed=5, labels=run.labels_for(1, 4, {"gender": "1"}))[0]
    )


def test_cli_writes_a_looping_gif_with_every_frame_upscaled(tiny_run, tmp_path):
    out = tmp_path / "walk.gif"
    code = main(
        [
            "interpolate",
            "--run",
            str(tiny_run),
            "--seeds",
            "1,2,3",
            "--frames",
            "3",
            "--loop",
            "--fps",
            "25",
            "--size",
            "32",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 9 and gif.size == (32, 32)
        assert gif.info["loop"] == 0 and gif.info["duration"] == 40  # 1000 / 25 ms
    assert not list(tmp_path.glob("*.partial"))


def test_cli_refuses_an_existing_out_and_bad_arguments(tiny_run, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    out.write_bytes(b"mine")
    args = ["interpolate", "--run", str(tiny_run), "--seeds", "1,2", "--frames", "2"]
    assert main(args + ["--out", str(out)]) == 2
    assert out.read_bytes() == b"mine"
    assert "already exists" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "walk.avi")]) == 2
    assert ".gif or .mp4" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["interpolate", "--run", str(tiny_run), "--seeds", "1", "--out", str(out)])
    assert exit_info.value.code == 2


def test_mp4_without_an_encoder_is_a_one_line_error(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(animation, "find_video_encoder", lambda: None)
    out = tmp_path / "walk.mp4"
    code = main(
        [
            "interpolate",
            "--run",
            str(tiny_run),
            "--seeds",
            "1,2",
            "--frames",
            "2",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.startswith("facegan: error:") and "imageio-ffmpeg" in err
    assert len(err.strip().splitlines()) == 1


def test_mp4_frames_are_piped_to_the_encoder(run, tmp_path, monkeypatch):
    # A stand-in for ffmpeg: writes what it reads from stdin to its last argument.
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\nopen(sys.argv[-1], 'wb').write(sys.stdin.buffer.read())\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(animation, "find_video_encoder", lambda: str(fake))
    frames = animation.walk_frames(run, [1, 2], 2)
    out = animation.write_animation(frames, tmp_path / "walk.mp4", fps=10)
    assert out.read_bytes() == frames.tobytes()  # raw RGB, frame after frame
