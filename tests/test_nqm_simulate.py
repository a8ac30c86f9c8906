"""polyak.nqm.simulate: the Monte Carlo of the noisy quadratic model and its noise generator.

The exact expected loss these tests compare with is computed here, independently of
polyak.nqm's closed forms, by iterating each direction's second moments step by step. With
a = 1 + β − x (x = η h^(1−p), σ² = η² h^(−2p) c / b) the update reads
θ_{t+1} = a θ_t − β θ_{t−1} − σ z_t, z_t independent of (θ_t, θ_{t−1}) with mean 0 and
variance 1, so (A, B, X) = (E[θ_t²], E[θ_{t−1}²], E[θ_t θ_{t−1}]) evolves as

    A' = a² A + β² B − 2 a β X + σ²,   B' = A,   X' = E[θ_{t+1} θ_t] = a A − β X,

from (s0, s0, s0) (θ_{−1} = θ_0), and E[ℓ(θ_t)] = ½ Σ counts·h·A_t.
"""

import numpy as np
import pytest
from scipy import stats

from polyak import _config
from polyak import _nqm_simulate
from polyak._config import kernels
from polyak._nqm_model import NoisyQuadratic
from polyak.nqm import SimulationResult, simulate

M32 = np.uint64(0xFFFFFFFF)


def second_moments(x, sigma2, beta, s0, steps):
    """E[θ_t²] for t = 0..steps, step by step (arrays broadcast against each other)."""
    a = 1.0 + beta - x
    A = B = X = np.asarray(s0, dtype=np.float64) + 0 * a
    out = [A]
    for _ in range(steps):
        A, B, X = a * a * A + beta * beta * B - 2 * a * beta * X + sigma2, A, a * A - beta * X
        out.append(A)
    return np.stack(out, axis=-1)


def exact_loss(model, steps, lr, beta=0.0, batch_size=1, precondition=0.0):
    """E[ℓ(θ_t)], t = 0..steps, of each configuration (broadcast), shape (configurations..., steps + 1)."""
    lr, beta, b, p = (np.asarray(v, dtype=np.float64)[..., None] for v in
                      np.broadcast_arrays(lr, beta, batch_size, precondition))
    h, c = model.h, model.c
    x = lr * h ** (1 - p)
    sigma2 = lr**2 * h ** (-2 * p) * c / b
    moments = second_moments(x, sigma2, beta, model.s0, steps)  # (configs..., n, steps + 1)
    return np.einsum("...it,i->...t", moments, 0.5 * model.counts * model.h)


def assert_within(result, exact, sigmas=5.0):
    """Every record of the Monte Carlo mean within `sigmas` standard errors of the exact mean."""
    assert result.mean.shape == exact.shape == result.stderr.shape
    scale = np.maximum(result.stderr, 1e-12 * np.abs(exact))  # (t = 0: no spread)
    z = (result.mean - exact) / scale
    assert np.all(np.isfinite(z)), z
    assert np.max(np.abs(z)) < sigmas, (np.max(np.abs(z)), np.unravel_index(np.argmax(np.abs(z)), z.shape))


# --- the exact reference itself -------------------------------------------------------------


def test_second_moment_recursion_matches_the_issue():
    # one direction, h = c = b = 1, lr 0.1, β 0.9, s0 = 1
    moments = second_moments(0.1, 0.01, 0.9, 1.0, 20_000)
    assert moments[37] == pytest.approx(0.5175247025, abs=1e-10)
    assert moments[-1] == pytest.approx(0.5135135135, abs=1e-10)
    model = NoisyQuadratic([1.0])
    assert exact_loss(model, 37, 0.1, 0.9)[37] == pytest.approx(0.5 * 0.5175247025, abs=1e-10)


# --- Monte Carlo against the exact expected loss ---------------------------------------------


def test_sgd_matches_the_exact_expected_loss():
    model = NoisyQuadratic([1.0, 0.3, 0.05], s0=[1.0, 2.0, 0.5])
    lr = np.array([0.1, 0.5, 1.0, 1.9])
    result = simulate(model, 60, lr=lr, replicas=3000, seed=11, every=3)
    assert isinstance(result, SimulationResult)
    assert result.mean.shape == (4, 21) and np.array_equal(result.t, np.arange(0, 61, 3))
    assert_within(result, exact_loss(model, 60, lr)[:, ::3])
    assert np.all(result.stderr[:, 0] == 0) and np.all(result.stderr[:, 1:] > 0)


def test_momentum_matches_the_issue_numbers():
    model = NoisyQuadratic([1.0])
    result = simulate(model, 40, lr=0.1, beta=0.9, replicas=20_000, seed=3)
    assert abs(result.mean[37] - 0.5 * 0.5175247025) < 5 * result.stderr[37]
    assert_within(result, exact_loss(model, 40, 0.1, 0.9))


def test_momentum_batch_size_and_preconditioning_match():
    model = NoisyQuadratic(np.geomspace(1.0, 1e-3, 7), c=np.linspace(0.5, 2.0, 7))
    lr, beta, b, p = np.array([0.05, 0.3])[:, None, None], np.array([0.0, 0.5, 0.95])[None, :, None], \
        np.array([1, 8]), 0.0
    result = simulate(model, 80, lr=lr, beta=beta, batch_size=b, precondition=p, replicas=1000, seed=5, every=4)
    assert result.mean.shape == (2, 3, 2, 21)
    assert_within(result, exact_loss(model, 80, lr, beta, b, p)[..., ::4])
    p = np.array([0.25, 0.5, 1.0])
    result = simulate(model, 80, lr=0.2, beta=0.6, batch_size=2, precondition=p, replicas=1000, seed=6, every=4)
    assert_within(result, exact_loss(model, 80, 0.2, 0.6, 2, p)[..., ::4])


def test_counts_simulate_every_direction_of_a_bin():
    # a bin of count k is k directions: the same run as the model with each direction listed
    h, c, s0 = np.array([1.0, 0.5, 0.1]), np.array([0.3, 1.0, 2.0]), np.array([1.0, 3.0, 0.2])
    counts = np.array([3, 0, 5])
    binned = NoisyQuadratic(h, c=c, counts=counts, s0=s0)
    listed = NoisyQuadratic(np.repeat(h, counts), c=np.repeat(c, counts), s0=np.repeat(s0, counts))
    options = dict(lr=[0.1, 0.7], beta=0.5, replicas=2000, seed=9, every=2)
    a, b = simulate(binned, 50, **options), simulate(listed, 50, **options)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    assert_within(a, exact_loss(binned, 50, np.array([0.1, 0.7]), 0.5)[..., ::2])
    # and 8 directions' losses add up: the spread of the sum is that of 8 directions, not of 2 bins
    single = simulate(NoisyQuadratic([1.0], counts=[64]), 30, lr=0.5, replicas=4000, seed=1)
    assert_within(single, exact_loss(NoisyQuadratic([1.0], counts=[64]), 30, 0.5))
    one = simulate(NoisyQuadratic([1.0]), 30, lr=0.5, replicas=4000, seed=1)
    # standard deviation of a sum of 64 independent copies: 8 times one copy's (not 64 times)
    ratio = single.stderr[-1] / one.stderr[-1]
    assert 8 * 0.9 < ratio < 8 * 1.1


def test_noise_free_directions_decay_exactly():
    # c = 0: θ_t = (1 − x)^t √s0 exactly (x = 1/2: powers of two), the same in every replica;
    # the kernel runs with flush-to-zero, so the loss reaches 0 instead of subnormals
    model = NoisyQuadratic([1.0], c=[0.0])
    result = simulate(model, 1200, lr=0.5, replicas=4, seed=0)
    t = np.arange(1201)
    expected = 0.5 * 0.25 ** t.astype(float)
    normal = expected >= np.finfo(float).tiny
    np.testing.assert_array_equal(result.mean[normal], expected[normal])
    assert np.all(result.mean[~normal] == 0) and np.all(result.stderr == 0)
    # the caller's floating-point state is restored: subnormals survive arithmetic again
    assert np.array([1e-310]) * 1.0 != 0


def test_a_diverging_configuration_does_not_spoil_the_others():
    model = NoisyQuadratic([1.0, 0.1])
    lr = np.array([0.5, 2.5, 1.0])  # 2.5 h > 2: gradient descent diverges along h = 1
    result = simulate(model, 3000, lr=lr, replicas=16, seed=2, every=100)
    assert not np.isfinite(result.mean[1, -1]) and not np.isfinite(result.stderr[1, -1])
    assert np.all(np.isfinite(result.mean[[0, 2]])) and np.all(np.isfinite(result.stderr[[0, 2]]))
    alone = simulate(model, 3000, lr=lr, replicas=16, seed=2, every=100)
    np.testing.assert_array_equal(alone.mean[[0, 2]], result.mean[[0, 2]])
    assert "diverged=1" in repr(result)


# --- reproducibility -------------------------------------------------------------------------


def small_run(**options):
    model = NoisyQuadratic(np.geomspace(1.0, 0.01, 5), counts=[1, 2, 3, 2, 1])
    options = dict(dict(lr=[0.1, 0.4, 0.9], beta=[[0.0], [0.8]], replicas=37, seed=123, every=7), **options)
    return simulate(model, 200, **options)


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = small_run(), small_run(), small_run(seed=124)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    assert not np.any(a.mean[..., 1:] == c.mean[..., 1:])


@pytest.mark.parametrize("n_threads", [2, 3])
def test_thread_count_does_not_change_a_bit(n_threads):
    one = small_run(n_threads=1)
    many = small_run(n_threads=n_threads)
    np.testing.assert_array_equal(one.mean, many.mean)
    np.testing.assert_array_equal(one.stderr, many.stderr)


def kernel_arguments(model, steps, replicas, lr, beta):
    lr, beta = np.broadcast_arrays(np.asarray(lr, float), np.asarray(beta, float))
    count = lr.size
    bins = np.repeat(np.arange(model.n, dtype=np.int64), model.counts)
    units = -(-replicas // kernels("_nqm").lanes())
    column = lr.reshape(-1, 1)
    return dict(x=np.ascontiguousarray(column * model.h), noise_std=np.sqrt(column**2 * model.c),
                beta=np.ascontiguousarray(beta.ravel()), bins=bins, weights=0.5 * model.h[bins],
                theta0=np.sqrt(model.s0)[bins], first_configuration=0, steps=steps, every=1, replicas=replicas,
                seed=77, unit_mean=np.empty((count * units, steps + 1)), unit_m2=np.empty((count * units, steps + 1)),
                mean=np.empty((count, steps + 1)), stderr=np.empty((count, steps + 1)), stop=np.zeros(1, np.intc))


def test_kernel_is_thread_count_independent_beyond_the_cpus():
    # (resolve_threads caps n_threads at the CPUs available: the kernel itself takes any count)
    model = NoisyQuadratic(np.linspace(0.2, 1.0, 9))
    outputs = []
    for threads in (1, 3, 4):
        arguments = kernel_arguments(model, 150, 50, np.linspace(0.1, 1.0, 7), 0.3)
        kernels("_nqm").simulate(**arguments, n_threads=threads)
        outputs.append((arguments["mean"], arguments["stderr"]))
    for mean, stderr in outputs[1:]:
        np.testing.assert_array_equal(mean, outputs[0][0])
        np.testing.assert_array_equal(stderr, outputs[0][1])


def test_configurations_cut_into_calls_give_the_same_numbers(monkeypatch):
    whole = small_run()
    monkeypatch.setattr(_nqm_simulate, "_PARTIALS_BYTES", 1)  # one configuration per kernel call
    cut = small_run()
    np.testing.assert_array_equal(whole.mean, cut.mean)
    np.testing.assert_array_equal(whole.stderr, cut.stderr)


def test_every_records_the_same_losses():
    model = NoisyQuadratic([1.0, 0.2, 0.04])
    dense = simulate(model, 30, lr=0.3, beta=0.7, replicas=40, seed=8)
    sparse = simulate(model, 30, lr=0.3, beta=0.7, replicas=40, seed=8, every=4)
    np.testing.assert_array_equal(sparse.t, [0, 4, 8, 12, 16, 20, 24, 28])
    np.testing.assert_array_equal(sparse.mean, dense.mean[::4])
    np.testing.assert_array_equal(sparse.stderr, dense.stderr[::4])
    zero = simulate(model, 0, lr=0.3, replicas=2, seed=8)
    assert zero.mean.shape == (1,) and zero.mean[0] == pytest.approx(model.initial_loss())


def test_levels_draw_the_same_noise():
    # each level rounds differently (FMA or not), but the noise is the same: close curves
    results = {}
    for name in _config.supported_levels():
        with _config.use_level(name):
            results[name] = small_run()
    reference = next(iter(results.values()))
    for result in results.values():
        np.testing.assert_allclose(result.mean, reference.mean, rtol=1e-11)


def test_the_kernel_runs_the_documented_update_on_the_drawn_noise():
    # a NumPy re-run of the model with the normals the kernel says it draws
    model = NoisyQuadratic([1.0, 0.5, 0.25], c=[0.5, 1.0, 2.0], s0=[1.0, 4.0, 0.5])
    # 131 steps: across a chunk of the kernel (128 steps) and an odd count (half a Philox block)
    lr, beta, b, steps, replicas = np.array([0.2, 0.6]), 0.7, 3, 131, 21
    result = simulate(model, steps, lr=lr, beta=beta, batch_size=b, replicas=replicas, seed=31)
    draw = kernels("_nqm").draw_normals
    for config, eta in enumerate(lr):
        noise = {}
        for pair in range(2):
            z = np.empty((steps, 2, replicas))
            draw(seed=31, configuration=config, pair=pair, first_replica=0, out=z)
            noise[2 * pair], noise[2 * pair + 1] = z[:, 0], z[:, 1]
        x, sigma = eta * model.h, np.sqrt(eta**2 * model.c / b)
        theta = np.tile(np.sqrt(model.s0), (replicas, 1))
        v = np.zeros_like(theta)
        losses = [0.5 * (theta**2) @ model.h]
        for t in range(steps):
            z = np.stack([noise[d][t] for d in range(3)], axis=1)
            v = beta * v - x * theta - sigma * z
            theta = theta + v
            losses.append(0.5 * (theta**2) @ model.h)
        losses = np.array(losses)
        np.testing.assert_allclose(result.mean[config], losses.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose(result.stderr[config], losses.std(axis=1, ddof=1) / np.sqrt(replicas),
                                   rtol=1e-9, atol=1e-15)


# --- the generator ---------------------------------------------------------------------------


def philox_reference(seed, c0, c1, c2, c3):
    """Philox4x32-10 (Salmon et al. 2011), written from the paper, on uint64 arrays of 32-bit words."""
    c = [np.asarray(v, dtype=np.uint64) for v in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0, p1 = c[0] * np.uint64(0xD2511F53), c[2] * np.uint64(0xCD9E8D57)
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & M32, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & M32]
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & M32, (k1 + np.uint64(0xBB67AE85)) & M32
    return np.stack(c, axis=-1)


def kernel_philox(seed, c0, c1, c2, c3):
    words = [np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=np.uint32), np.shape(c0)))
             for v in (c0, c1, c2, c3)]
    out = np.empty((words[0].size, 4), np.uint32)
    kernels("_nqm").philox(seed=seed, c0=words[0], c1=words[1], c2=words[2], c3=words[3], out=out)
    return out


@pytest.mark.parametrize("seed, counter, expected", [
    # Random123's known-answer vectors for Philox4x32-10 (key = (seed low, seed high))
    (0, (0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (2**64 - 1, (0xFFFFFFFF,) * 4, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (0x299F31D0A4093822, (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(seed, counter, expected):
    assert tuple(kernel_philox(seed, *([v] for v in counter))[0]) == expected
    assert tuple(philox_reference(seed, *([v] for v in counter))[0]) == expected


def test_philox_vector_code_matches_the_reference():
    rng = np.random.default_rng(0)
    counters = rng.integers(0, 2**32, size=(4, 5000), dtype=np.uint64)
    for seed in (0, 12345, 2**64 - 1, 0xDEADBEEF00C0FFEE):
        np.testing.assert_array_equal(kernel_philox(seed, *counters), philox_reference(seed, *counters))


def box_muller_reference(radius_word, angle_word):
    """The kernel's normals from two Philox words, in extended precision: ρ = √(−2 ln u₁) with
    u₁ = 1 − (R + ½)·2⁻³²; φ = (π/2)(F − ½), F = (⌊A/4⌋ + ½)·2⁻³⁰; (z0, z1) = ρ·(±cos φ, sin φ),
    cos φ negated by bit 0 of A, the two swapped by bit 1."""
    R, A = radius_word.astype(np.uint64), angle_word.astype(np.uint64)
    wide = np.longdouble
    u1 = 1 - (R.astype(wide) + wide(0.5)) * wide(2.0) ** -32
    pi = 4 * np.arctan(wide(1))
    phi = pi / 2 * (((A >> np.uint64(2)).astype(wide) + wide(0.5)) * wide(2.0) ** -30 - wide(0.5))
    rho = np.sqrt(-2 * np.log(u1))
    c = np.where((A & np.uint64(1)) == 1, -np.cos(phi), np.cos(phi))
    s = np.sin(phi)
    swap = (A & np.uint64(2)) == 2
    return np.stack([rho * np.where(swap, s, c), rho * np.where(swap, c, s)], axis=-1)


def test_normals_are_box_muller_of_the_philox_words():
    # block b of (pair, replica, configuration) gives steps 2b (words 0, 1) and 2b + 1 (words 2, 3)
    seed, config, pair, steps, replicas = 2024, 3, 5, 64, 300
    z = np.empty((steps, 2, replicas))
    kernels("_nqm").draw_normals(seed=seed, configuration=config, pair=pair, first_replica=10, out=z)
    t, r = np.meshgrid(np.arange(steps), np.arange(10, 10 + replicas), indexing="ij")
    words = philox_reference(seed, t // 2, r, np.full_like(t, pair), np.full_like(t, config))
    odd = (t % 2 == 1)
    radius_word = np.where(odd, words[..., 2], words[..., 0])
    angle_word = np.where(odd, words[..., 3], words[..., 1])
    expected = np.moveaxis(box_muller_reference(radius_word, angle_word), -1, 1).astype(np.float64)
    # a few units in the last place of max(1, |z|) (the absolute error of sin and cos near 0)
    error = np.abs(z - expected) / np.maximum(np.abs(expected), 1.0)
    assert error.max() < 4 * np.finfo(float).eps, error.max() / np.finfo(float).eps


def test_the_transform_at_the_ends_of_the_words():
    # through the kernel's vector code: R = 2³² − 1 gives the largest radius √(66 ln 2) = 6.7636,
    # R = 0 the smallest, √(2·2⁻³³) (to first order); A = 0 and 2³² − 1 the ends of the angle,
    # its low two bits each quadrant
    edges = np.array([0, 1, 2, 3, 2**31, 2**32 - 4, 2**32 - 3, 2**32 - 2, 2**32 - 1], dtype=np.uint32)
    radius_word, angle_word = (np.ascontiguousarray(w.ravel()) for w in np.meshgrid(edges, edges))
    z = np.empty((radius_word.size, 2))
    kernels("_nqm").box_muller(radius_words=radius_word, angle_words=angle_word, out=z)
    expected = box_muller_reference(radius_word, angle_word).astype(np.float64)
    np.testing.assert_allclose(z, expected, rtol=4 * np.finfo(float).eps, atol=4 * np.finfo(float).eps)
    rho = np.hypot(z[:, 0], z[:, 1])
    assert rho.max() == pytest.approx(np.sqrt(66 * np.log(2)), rel=1e-15)
    assert rho.min() == pytest.approx(np.sqrt(2.0**-32), rel=1e-9)
    with pytest.raises(ValueError, match="one length N"):
        kernels("_nqm").box_muller(radius_words=radius_word, angle_words=angle_word[:-1], out=z)


def test_normals_have_the_moments_of_a_standard_normal():
    z = np.empty((1000, 2, 1000))
    kernels("_nqm").draw_normals(seed=99, configuration=0, pair=0, first_replica=0, out=z)
    flat = z.ravel()
    n = flat.size
    assert abs(flat.mean()) < 5 / np.sqrt(n)
    assert abs(flat.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(flat**4) / flat.var() ** 2 - 3) < 5 * np.sqrt(96 / n)
    assert abs(stats.skew(flat)) < 5 * np.sqrt(6 / n)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    # independent: the pair of one block, consecutive steps, neighbouring replicas (and squares:
    # Box–Muller's two normals share a radius, yet are independent)
    for a, b in [(z[:, 0], z[:, 1]), (z[:-1], z[1:]), (z[..., :-1], z[..., 1:])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 / np.sqrt(a.size)
        assert abs(np.corrcoef(a.ravel() ** 2, b.ravel() ** 2)[0, 1]) < 5 / np.sqrt(a.size)
    # the tail: P(|z| > 4) = 6.33e-5
    assert stats.binomtest(int(np.sum(np.abs(flat) > 4)), n, 2 * stats.norm.sf(4)).pvalue > 1e-3


def test_the_streams_of_configurations_replicas_and_pairs_differ():
    draw = kernels("_nqm").draw_normals
    base = dict(seed=5, configuration=0, pair=0, first_replica=0)
    samples = []
    for change in ({}, {"configuration": 1}, {"pair": 1}, {"first_replica": 64}, {"seed": 6}):
        z = np.empty((50, 2, 64))
        draw(**dict(base, **change), out=z)
        samples.append(z.ravel())
    correlation = np.corrcoef(samples)
    assert np.all(np.abs(correlation[np.triu_indices(5, 1)]) < 5 / np.sqrt(samples[0].size))


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("change, error, words", [
    (dict(replicas=1), ValueError, "replicas"),
    (dict(replicas=0), ValueError, "replicas"),
    (dict(replicas=2.0), TypeError, "replicas"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(lr=[0.1, -1.0]), ValueError, "lr"),
    (dict(beta=1.0), ValueError, "beta"),
    (dict(beta=-0.1), ValueError, "beta"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=1.5), ValueError, "batch_size"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(steps=10.0), TypeError, "steps"),
    (dict(every=0), ValueError, "every"),
    (dict(every=-2), ValueError, "every"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(lr=[0.1, 0.2], beta=[0.1, 0.2, 0.3]), ValueError, "broadcast"),
    (dict(model="not a model"), TypeError, "NoisyQuadratic"),
])
def test_bad_input_is_a_clear_error(change, error, words):
    arguments = dict(model=NoisyQuadratic([1.0, 0.5]), steps=10, lr=0.1, replicas=4, seed=0)
    arguments.update(change)
    with pytest.raises(error, match=words):
        simulate(arguments.pop("model"), arguments.pop("steps"), **arguments)


def test_required_keywords():
    with pytest.raises(TypeError):
        simulate(NoisyQuadratic([1.0]), 10, lr=0.1, seed=0)  # no replicas
    with pytest.raises(TypeError):
        simulate(NoisyQuadratic([1.0]), 10, lr=0.1, replicas=2)  # no seed


def test_empty_grid_and_repr():
    result = simulate(NoisyQuadratic([1.0]), 5, lr=np.empty((0, 3)), replicas=2, seed=0)
    assert result.mean.shape == (0, 3, 6) and result.t.shape == (6,)
    result = simulate(NoisyQuadratic([1.0]), 5, lr=[0.1, 0.2], replicas=2, seed=0)
    assert repr(result).startswith("SimulationResult(mean: 2x6, replicas=2, seed=0")
    assert not result.mean.flags.writeable


def test_the_result_carries_each_configuration_in_the_shape_of_its_curves():
    model = NoisyQuadratic([1.0, 0.5])
    sim = simulate(model, 8, lr=np.array([0.1, 0.2]), beta=np.array([[0.0], [0.5]]), batch_size=2, replicas=4,
                   seed=0, every=4)
    assert sim.mean.shape == (2, 2, 3)
    for values in (sim.lr, sim.beta, sim.batch_size, sim.precondition):
        assert values.shape == (2, 2)
    np.testing.assert_array_equal(sim.beta, [[0.0, 0.0], [0.5, 0.5]])
