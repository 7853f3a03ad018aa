"""Health warnings: mode collapse on the fixed latent batch, discriminator overfitting."""

import numpy as np
import pytest

import facegan
from conftest import tiny_config
from facegan.artifacts.logs import read_metrics
from facegan.training import health, loop


def _faces(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_diversity_is_zero_for_identical_images_and_high_for_different_ones():
    same = np.repeat(_faces(1, 0), 16, axis=0)
    assert health.diversity(same) < 1e-6
    assert health.diversity(_faces(16, 1)) > 0.05


def test_collapse_warns_once_when_samples_lose_their_variety():
    monitor = health.CollapseMonitor(_faces(16, 0))
    flat = np.full((16, 32, 32, 3), 128, np.uint8)
    # an untrained generator's outputs look alike: not a collapse, nothing was lost yet
    assert monitor.check(flat)[1] is None
    ratio, warning = monitor.check(_faces(16, 1))
    assert ratio > 0.5 and warning is None
    jitter = np.random.default_rng(5).integers(-3, 4, (16, 32, 32, 3))
    collapsed = np.clip(np.repeat(_faces(1, 2), 16, axis=0) + jitter, 0, 255).astype(np.uint8)
    ratio, warning = monitor.check(collapsed)
    assert ratio < 0.25 and "possible mode collapse" in warning
    assert monitor.check(collapsed)[1] is None  # once per episode
    monitor.check(_faces(16, 3))  # recovered ...
    assert "possible mode collapse" in monitor.check(collapsed)[1]  # ... and collapsed again


def test_overfitting_warns_after_patience_intervals_above_the_threshold():
    monitor = health.OverfitMonitor(threshold=0.95, patience=3)
    assert [monitor.check(v) for v in (0.99, 0.97)] == [None, None]
    assert monitor.check(None) is None  # an interval with every step skipped
    assert "overfitting" in monitor.check(0.999)
    assert monitor.check(0.999) is None
    assert monitor.check(0.5) is None
    assert [monitor.check(0.99) for _ in range(3)] == [None] * 3  # one dip is not a recovery
    assert [monitor.check(0.5) for _ in range(3)] == [None] * 3
    assert [monitor.check(0.99) for _ in range(3)][-1] is not None


@pytest.mark.integration
def test_the_loop_logs_health_warnings_and_the_diversity(tmp_path, monkeypatch):
    # Scripted measurements: diverse at the first sample grid, collapsed at the next.
    readings = iter([0.2, 0.2, 0.2, 0.001, 0.001, 0.001])
    real_diversity = health.diversity
    calls = []

    def scripted(images):
        calls.append(len(images))
        return real_diversity(images) if len(calls) == 1 else next(readings)

    monkeypatch.setattr(health, "diversity", scripted)
    monkeypatch.setattr(
        loop, "OverfitMonitor", lambda: health.OverfitMonitor(threshold=0.0, patience=2)
    )
    run = facegan.train(
        tiny_config(steps=8, sample_every=2, log_every=2), tmp_path / "r", progress=False
    )
    log = (run.directory / "train.log").read_text()
    assert "possible mode collapse" in log and "discriminator may be overfitting" in log
    records = read_metrics(run.directory / "metrics.jsonl")
    warnings = [r["warning"] for r in records if r.get("event") == "health"]
    assert len(warnings) == 2
    diversity = [r["diversity"] for r in records if "diversity" in r]
    assert len(diversity) == 4 and diversity[-1] < 0.25
    assert all(0 <= r["d_real_positive"] <= 1 for r in records if "d_real_positive" in r)
