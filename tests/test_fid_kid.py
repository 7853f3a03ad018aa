"""FID and KID against independent float64 references and closed-form answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from facegan.errors import UserError
from facegan.metrics.fid import feature_statistics, fid, frechet_distance
from facegan.metrics.kid import kid, kid_estimate

# ---------------------------------------------------------------- references


def reference_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """FID without scipy.sqrtm: tr sqrt(S1 S2) = sum sqrt(eig(S1^½ S2 S1^½)).

    S1^½ S2 S1^½ is symmetric PSD and similar to S1 S2, so both have the same
    eigenvalues; symmetric eigendecompositions are all this needs.
    """
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    diff = mu1 - mu2
    tr_sqrt = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt)


def naive_mmd2_unbiased(x, y) -> float:
    """Unbiased MMD² with k(a, b) = (a·b / d + 1)³, one pair at a time."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def gaussian_moments(mu, var):
    """E[x], E[x²], E[x³] of N(mu, var)."""
    return mu, mu**2 + var, mu**3 + 3 * mu * var


@pytest.fixture(scope="module")
def correlated():
    """Two correlated 6-d Gaussian sets of 400 samples (different means and covariances)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    return a, b


# ---------------------------------------------------------------- FID


def test_statistics_are_float64_mean_and_unbiased_covariance(correlated):
    a, _ = correlated
    mu, sigma = feature_statistics(a.astype(np.float32))
    assert mu.dtype == sigma.dtype == np.float64
    assert mu.shape == (6,) and sigma.shape == (6, 6)
    centred = a - a.mean(axis=0)
    np.testing.assert_allclose(sigma, centred.T @ centred / (len(a) - 1), rtol=1e-5)


def test_statistics_of_one_feature_are_2d():
    mu, sigma = feature_statistics(np.arange(5.0)[:, None])
    assert mu.shape == (1,) and sigma.shape == (1, 1)
    assert sigma[0, 0] == pytest.approx(2.5)


def test_fid_of_a_set_against_itself_is_zero(correlated):
    a, _ = correlated
    scale = np.trace(np.cov(a, rowvar=False))
    assert abs(fid(a, a)) < 1e-6 * scale


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)  # standard deviations
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1**2 + s2**2 - 2 * s1 * s2)
    got = frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_commuting_covariances_is_closed_form():
    # Same eigenvectors Q: FID = |Δμ|² + Σ (√a - √b)² over the eigenvalues a, b.
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(7, 7)))
    a, b = rng.uniform(0.1, 4.0, 7), rng.uniform(0.1, 4.0, 7)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_fid_matches_independent_reference_on_sample_statistics(correlated):
    a, b = correlated
    mu1, sigma1 = a.mean(axis=0), np.cov(a, rowvar=False)
    mu2, sigma2 = b.mean(axis=0), np.cov(b, rowvar=False)
    assert fid(a, b) == pytest.approx(reference_frechet(mu1, sigma1, mu2, sigma2), rel=1e-9)


def test_fid_of_samples_approaches_the_population_value():
    rng = np.random.default_rng(3)
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    a = rng.normal(size=(20000, 3)) * s1
    b = rng.normal(size=(20000, 3)) * s2 + np.array([1.0, 0.0, 0.0])
    population = 1.0 + np.sum((s1 - s2) ** 2)  # = 1.5
    assert fid(a, b) == pytest.approx(population, abs=0.05)


def test_fid_survives_singular_covariances():
    # Fewer samples than features: rank-deficient covariances, the product is singular.
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    assert np.isfinite(fid(a, b))
    assert abs(fid(a, a)) < 1e-3


def test_frechet_distance_rejects_a_covariance_that_is_not_psd():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))


@pytest.mark.parametrize(
    "a, b",
    [
        (np.zeros((1, 3)), np.zeros((4, 3))),  # one sample: no covariance
        (np.zeros((4, 3)), np.zeros((4, 2))),  # feature sizes differ
        (np.zeros(4), np.zeros((4, 1))),  # not 2-D
        (np.full((4, 3), np.nan), np.zeros((4, 3))),  # NaN
    ],
)
def test_fid_rejects_bad_features(a, b):
    with pytest.raises(UserError):
        fid(a, b)


# ---------------------------------------------------------------- KID


def test_kid_equals_naive_double_loop_on_tiny_sets():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.3
    # subset_size >= both sizes: every subset is a permutation of the whole set.
    mean, std = kid(x, y, num_subsets=3, subset_size=50)
    assert mean == pytest.approx(naive_mmd2_unbiased(x, y), rel=1e-12, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_deterministic_for_a_seed(correlated):
    a, b = correlated

    def run(seed):
        return kid(a, b, num_subsets=5, subset_size=50, seed=seed)

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_kid_matches_the_one_dimensional_closed_form():
    # In 1-D, (xy + 1)³ = x³y³ + 3x²y² + 3xy + 1, so the population MMD² is
    # Σ_j c_j (E x^j - E y^j)² with c = (3, 3, 1) for j = 1, 2, 3. The estimator is
    # unbiased, so its average over independent draws converges to that value; over
    # 8 draws of 3000 its relative spread is about 2 %, hence the 8 % tolerance.
    rng = np.random.default_rng(6)
    mx, my = gaussian_moments(0.0, 0.25), gaussian_moments(0.5, 0.25)
    population = sum(c * (p - q) ** 2 for c, p, q in zip((3, 3, 1), mx, my))  # = 1.1875
    estimates = [
        kid(
            rng.normal(0.0, 0.5, size=(3000, 1)),
            rng.normal(0.5, 0.5, size=(3000, 1)),
            num_subsets=1,
            subset_size=3000,
        )[0]
        for _ in range(8)
    ]
    assert np.mean(estimates) == pytest.approx(population, rel=0.08)


def test_kid_is_unbiased_for_one_distribution():
    # 300 independent small draws of one distribution: the unbiased estimator averages
    # to 0 within 4 standard errors; the biased one (diagonal kept) would sit far above.
    rng = np.random.default_rng(7)
    m, d, draws = 20, 4, 300
    estimates, biased = [], []
    for seed in range(draws):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        estimates.append(kid(x, y, num_subsets=1, subset_size=m, seed=seed)[0])
        kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    estimates, biased = np.array(estimates), np.array(biased)
    standard_error = estimates.std(ddof=1) / np.sqrt(draws)
    assert abs(estimates.mean()) < 4 * standard_error
    assert biased.mean() > 10 * standard_error  # the test can tell a biased estimator


def test_kid_is_clearly_positive_for_different_distributions():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) * 1.5 + 0.5
    same_mean, _ = kid(x, rng.normal(size=(300, 8)), num_subsets=20, subset_size=100)
    mean, std = kid(x, y, num_subsets=20, subset_size=100)
    assert mean > 3 * std  # every subset well above 0, not just the average
    assert mean > 50 * abs(same_mean)


def test_kid_caps_the_subset_at_the_smaller_set():
    rng = np.random.default_rng(9)
    mean, _ = kid(
        rng.normal(size=(5, 2)), rng.normal(size=(40, 2)), num_subsets=4, subset_size=1000
    )
    assert np.isfinite(mean)


@pytest.mark.parametrize("kwargs", [{"num_subsets": 0}, {"subset_size": 1}])
def test_kid_rejects_bad_arguments(kwargs):
    with pytest.raises(UserError):
        kid(np.zeros((4, 2)), np.zeros((4, 2)), **kwargs)


# ---------------------------------------------------------------- small sets (issue 24, item 8)


def test_fid_of_singular_covariances_warns_nothing_on_the_terminal():
    # Inception pool features have channels that never fire: exactly singular covariances,
    # for which scipy's sqrtm spilled a LinAlgWarning; the number is the references' own.
    rng = np.random.default_rng(10)
    a, b = np.abs(rng.normal(size=(40, 64))), np.abs(rng.normal(size=(40, 64)))
    a[:, :5] = b[:, :5] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = fid(a, b)
    mu1, sigma1 = a.mean(axis=0), np.cov(a, rowvar=False)
    mu2, sigma2 = b.mean(axis=0), np.cov(b, rowvar=False)
    assert value == pytest.approx(reference_frechet(mu1, sigma1, mu2, sigma2), rel=1e-6)


def test_evaluate_s_kid_has_a_real_spread_for_small_sets():
    # 200 vs 200 (`evaluate --num 200`): subsets of 1000 capped at 200 were the whole sets,
    # 100 times over, so the spread printed as ± 0.00000. Subsets of half the smaller set differ.
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) * 1.2 + 0.2
    mean, spread, subset = kid_estimate(x, y)
    assert subset == 100
    assert spread > 0.05 * abs(mean) > 0
    whole = kid(x, y, num_subsets=1, subset_size=200)[0]
    assert mean == pytest.approx(whole, rel=0.25)  # an unbiased estimate of the same MMD²


def test_evaluate_s_kid_keeps_the_reference_subsets_for_large_sets():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(2500, 4)), rng.normal(size=(2500, 4)) + 0.1
    assert kid_estimate(x, y, seed=3) == (*kid(x, y, seed=3), 1000)
