"""Closed-form spectral radius against known values and against the 2×2 iteration matrices."""

import numpy as np
import pytest

from polyak.analysis import spectral_radius


def test_textbook_values():
    assert spectral_radius(0.6, 0.5, 4.0) == pytest.approx(np.sqrt(0.5), rel=1e-15)
    assert spectral_radius(0.6, 0.25, 4.0) == pytest.approx(0.8589454173, abs=1e-10)
    assert spectral_radius(0.6, 0.0, 4.0) == pytest.approx(1.4)  # GD: |1 - ηλ|
    assert spectral_radius(0.4, 0.0, 0.2) == pytest.approx(0.92)


def test_matches_eigenvalues_of_the_iteration_matrix():
    rng = np.random.default_rng(5)
    lr, beta, lam = rng.uniform(0, 1.5, 500), rng.uniform(0, 1, 500), rng.uniform(0, 4, 500)
    for nesterov in (False, True):
        if nesterov:  # PyTorch's form: v' = βv + λz, z' = z − η(λz + βv')
            matrices = np.array([[[b, l], [-e * b * b, 1 - e * l * (1 + b)]] for e, b, l in zip(lr, beta, lam)])
        else:  # d2l: v' = βv + λz, z' = z − ηv'
            matrices = np.array([[[b, l], [-e * b, 1 - e * l]] for e, b, l in zip(lr, beta, lam)])
        expected = np.max(np.abs(np.linalg.eigvals(matrices)), axis=1)
        np.testing.assert_allclose(spectral_radius(lr, beta, lam, nesterov=nesterov), expected, rtol=1e-6, atol=1e-7)


def test_broadcasts():
    assert spectral_radius(0.1, [0.0, 0.5], [[1.0], [2.0]]).shape == (2, 2)
