"""The models shipped in the package, on their real weights: they load, draw the faces
their cards promise (checksums by seed), a face detector finds faces in them, and the
CLI's seeds mean the same faces as the Python call's.

The mechanism itself (`--model` in every command, `--init`, never writing into a
model) is tested on a tiny model in tests/test_pretrained.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import facegan
from facegan.artifacts.shipping import CHECKSUM_SEEDS, REFERENCE_FILE, cpu_family, image_checksum
from facegan.cli import main
from facegan.pretrained import model_names, shipped_model

# Loads real networks and runs the face detector: not in the fast tier.
pytestmark = pytest.mark.integration

SHIPPED = ("faces-64", "faces-128")
BUDGET_BYTES = 32 * 2**20  # all shipped models together


def test_the_models_ship_in_the_package_within_the_size_budget():
    assert set(SHIPPED) <= set(model_names())
    files = [p for name in model_names() for p in shipped_model(name).directory.iterdir()]
    assert sum(p.stat().st_size for p in files) <= BUDGET_BYTES


@pytest.mark.parametrize("name", SHIPPED)
def test_each_card_gives_the_data_terms_the_budget_and_the_measured_numbers(name):
    facts = shipped_model(name).facts
    assert "non-commercial" in facts["data_terms"]
    assert facts["cpu_minutes"] >= 150 and facts["step"] > 0
    metrics = facts["metrics"]
    assert metrics["fid"] > 0 and 0 <= metrics["face_rate"] <= 1 and metrics["num"] >= 2000
    assert "facegan evaluate --model " + name in metrics["command"]
    assert facts["storage"]["max_pixel_diff"] <= 1  # float16 within 1/255 of float32


@pytest.mark.parametrize("name", SHIPPED)
def test_each_model_draws_the_faces_of_its_card_by_seed(name):
    model = shipped_model(name)
    faces = facegan.load(name).generate_seeds(CHECKSUM_SEEDS)
    got = {str(s): image_checksum(f) for s, f in zip(CHECKSUM_SEEDS, faces)}
    if model.facts["checksum_cpu"] == cpu_family():
        assert got == model.facts["checksums"]  # bit-exact on the CPU family that made them
        return
    # Another CPU family runs other convolution kernels: sums in another order can put
    # a pixel on the other side of a rounding boundary, never further.
    with np.load(model.directory / REFERENCE_FILE) as reference:
        assert list(reference["seeds"]) == list(CHECKSUM_SEEDS)
        diff = np.abs(faces.astype(int) - reference["faces"].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-2


@pytest.mark.parametrize("name", SHIPPED)
def test_a_face_detector_finds_faces_in_nine_of_ten_samples(name):
    from facegan.metrics.face_rate import face_rate

    rate = face_rate(facegan.load(name).generate(64, seed=0))
    assert rate >= 0.9, f"{name}: faces found in {rate:.0%} of 64 samples"


def test_the_cli_grid_by_seed_holds_the_same_faces_as_the_python_call(tmp_path, monkeypatch):
    from facegan.artifacts.images import make_grid

    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--model", "faces-64", "--seeds", "0-3"]) == 0
    grid = np.asarray(Image.open(tmp_path / "faces-64-seeds-0-3.png").convert("RGB"))
    expected = make_grid(facegan.load("faces-64").generate_seeds(range(4)))
    np.testing.assert_array_equal(grid, expected)
