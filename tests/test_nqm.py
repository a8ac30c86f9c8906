"""polyak.nqm's closed forms against the 3×3 second-moment recursions iterated step by step (in
exact or 60-digit arithmetic), step counts against scans, and the paper's findings."""

import decimal
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import polyak.nqm as nqm
from polyak._nqm_search import OptimalSteps

# --- references: the recursions of polyak.nqm's docstring, one step at a time -------------


def heavy_ball_recursion(h, c, s0, lr, beta, b, p, steps, number=Fraction):
    """E[θ_t²] of one direction for t = 0..steps: (E θ_t², E θ_t θ_{t−1}, E θ_{t−1}²) stepped by
    the 3×3 recursion of polyak.nqm's docstring, in `number` arithmetic (Fraction: exact for
    these float inputs; Decimal: 60 digits)."""
    # x = η h^(1−p) and σ² = η² h^(−2p) c/b rounded as polyak rounds them (the closed forms and
    # the recursion are compared on the same per-direction parameters), the rest exact
    power, log_h = np.float64(p), np.log(np.float64(h))
    scale = 1.0 if power == 0 else np.exp(-power * log_h)
    x = lr * (h if power == 0 else 1.0 if power == 1 else np.exp((1 - power) * log_h))
    x, noise = number(float(x)), number(float(lr**2 * scale**2 * c / b))
    s0, beta = number(float(s0)), number(float(beta))
    a = 1 + beta - x
    now, cross, before = s0, s0, s0  # θ_{−1} = θ_0
    out = [now]
    for _ in range(steps):
        now, cross, before = a * a * now - 2 * a * beta * cross + beta * beta * before + noise, a * now - beta * cross, now
        out.append(now)
    return out


def ema_recursion(h, c, s0, lr, d, b, steps, number=Fraction):
    """E[θ̄_t²] of one direction: (E θ², E θ̄², E θθ̄) stepped by their 3×3 recursion (β = 0)."""
    x, noise = number(lr * 1.0 * h), number(lr**2 * 1.0**2 * c / b)  # rounded as polyak rounds them
    s0, d = number(float(s0)), number(float(d))
    r = 1 - x
    plain, average, cross = s0, s0, s0  # θ̄_0 = θ_0
    out = [average]
    for _ in range(steps):
        fresh = r * r * plain + noise  # E θ_{t+1}²
        plain, average, cross = (fresh, d * d * average + 2 * d * (1 - d) * r * cross + (1 - d) * (1 - d) * fresh,
                                 r * d * cross + (1 - d) * fresh)
        out.append(average)
    return out


def precise(value):
    return decimal.Decimal(value)


@pytest.fixture(autouse=True)
def sixty_digits():
    with decimal.localcontext() as context:
        context.prec = 60
        yield


def loss_reference(model, lr, beta, b, p, steps, number=Fraction):
    """E[ℓ(θ_t)] for t = 0..steps from the recursion of every direction, as floats."""
    per_direction = [heavy_ball_recursion(h, c, s, lr, beta, b, p, steps, number)
                     for h, c, s in zip(model.h, model.c, model.s0)]
    weights = [number(float(w)) for w in model.weights]
    return [as_float(sum(w * moments[t] for w, moments in zip(weights, per_direction))) for t in range(steps + 1)]


def as_float(value):
    try:
        return float(value)
    except OverflowError:  # an unstable configuration's loss beyond the float range
        return math.inf


# --- the issue's numbers --------------------------------------------------------------------


def test_the_issue_s_numbers():
    model = nqm.NoisyQuadratic([1.0])
    assert 2 * nqm.expected_loss(model, 37, lr=0.1, beta=0.9) == pytest.approx(0.5175247025, abs=1e-10)
    assert 2 * nqm.steady_state_loss(model, lr=0.1, beta=0.9) == pytest.approx(0.5135135135, abs=1e-10)
    exact = heavy_ball_recursion(1.0, 1.0, 1.0, 0.1, 0.9, 1, 0, 37)[-1]
    assert 2 * nqm.expected_loss(model, 37, lr=0.1, beta=0.9) == pytest.approx(float(exact), rel=1e-14)
    assert isinstance(nqm.expected_loss(model, 37, lr=0.1, beta=0.9), float)


# --- expected_loss against the recursions ---------------------------------------------------

BETAS = st.one_of(st.sampled_from([0.0, 0.25, 0.5625, 0.81, 0.9, 0.99, 0.999]), st.floats(0.0, 0.9999))


@st.composite
def configurations(draw, max_directions=3):
    n = draw(st.integers(1, max_directions))
    h = draw(st.lists(st.floats(1e-4, 1.0), min_size=n, max_size=n))
    c = [hi * draw(st.floats(0.0, 4.0)) for hi in h]
    s0 = draw(st.lists(st.floats(0.0, 2.0), min_size=n, max_size=n))
    beta = draw(BETAS)
    p = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
    b = draw(st.integers(1, 4096))
    kind = draw(st.sampled_from(["any", "tiny", "critical", "large"]))
    x_top = 2 + 2 * beta  # stability: x = lr h^(1−p) < 2 + 2β in every direction
    if kind == "critical":  # x = (1 − √β)² in the first direction: a double root
        lr = (1 - math.sqrt(beta)) ** 2 / h[0] ** (1 - p) if beta < 1 else 1e-3
    elif kind == "tiny":
        lr = draw(st.floats(1e-9, 1e-6)) / max(hi ** (1 - p) for hi in h)
    elif kind == "large":  # x > 1: overshooting, negative or complex roots
        lr = draw(st.floats(1.0, 0.999 * x_top)) / max(hi ** (1 - p) for hi in h)
    else:
        lr = draw(st.floats(1e-3, 0.999 * x_top)) / max(hi ** (1 - p) for hi in h)
    return nqm.NoisyQuadratic(h, c, s0=s0), max(lr, 1e-300), beta, b, p


@settings(max_examples=60)
@given(configurations(), st.integers(0, 60))
def test_expected_loss_matches_the_exact_recursion(config, t):
    model, lr, beta, b, p = config
    reference = loss_reference(model, lr, beta, b, p, t)[-1]
    value = nqm.expected_loss(model, t, lr=lr, beta=beta, batch_size=b, precondition=p)
    # (absolutely, within rounding of the initial loss: φ_t cancels to exactly 0 at some steps,
    # e.g. x = 1, β = ¼: θ₁ = (1 + β − x)θ₀ − βθ₀ = 0, which the closed form gives as ~ε²·s0)
    assert value == pytest.approx(reference, rel=1e-12, abs=1e-15 * model.initial_loss() + 1e-300)


def test_a_step_that_cancels_the_start_exactly_gives_a_loss_within_rounding_of_zero():
    model = nqm.NoisyQuadratic([1.0], c=[0.0])  # x = lr h = 1, β = ¼: θ₁ = ¼θ₀ − ¼θ₀ = 0
    assert abs(nqm.expected_loss(model, 1, lr=1.0, beta=0.25)) < 1e-30
    assert nqm.expected_loss(model, 2, lr=1.0, beta=0.25) == pytest.approx(0.5 * 0.0625, rel=1e-12)  # θ₂ = −¼θ₀


@settings(max_examples=25)
@given(configurations(max_directions=2), st.integers(61, 3000))
def test_expected_loss_matches_the_recursion_over_thousands_of_steps(config, t):
    model, lr, beta, b, p = config
    reference = loss_reference(model, lr, beta, b, p, t, number=precise)[-1]
    value = nqm.expected_loss(model, t, lr=lr, beta=beta, batch_size=b, precondition=p)
    assert value == pytest.approx(reference, rel=1e-11, abs=1e-300)


def test_a_whole_curve_at_once_and_the_hard_corners():
    # double roots (exactly representable), lr·h down to 1e-9, β near 1, overshooting x
    cases = [(0.25, 0.25), (0.0625, 0.5625), (0.01, 0.81), (1e-9, 0.0), (1e-9, 0.9), (3.7e-11, 0.99999),
             (1.5, 0.0), (3.5, 0.9), (1.0, 0.0), (2.5e-11, 0.99999)]
    t = np.arange(0, 400)
    for x, beta in cases:
        model = nqm.NoisyQuadratic([1.0], c=[0.3], s0=0.7)
        curve = nqm.expected_loss(model, t, lr=x, beta=beta, batch_size=3)
        reference = loss_reference(model, x, beta, 3, 0.0, t[-1], number=precise)
        np.testing.assert_allclose(curve, reference, rtol=1e-12, err_msg=f"x={x}, beta={beta}")


def test_sgd_is_beta_zero_and_its_formula():
    model = nqm.NoisyQuadratic([0.3, 1e-7], c=[0.5, 2.0], s0=[1.0, 3.0])
    t = np.array([0, 1, 7, 100, 10**4, 10**9])
    lr, b = 0.7, 16
    x = lr * model.h
    noise = lr**2 * model.c / b
    decay = (1 - x)[:, None] ** (2.0 * t)
    formula = (model.weights[:, None] * (decay * model.s0[:, None] + noise[:, None] * (1 - decay) / (x * (2 - x))[:, None]))
    # 1 − (1 − x)^{2t} at x = 7e-8 cancels in the formula as written: compare with expm1 there
    decay_small = np.exp(2 * t * np.log1p(-x[1]))
    formula[1] = model.weights[1] * (decay_small * model.s0[1] - noise[1] * np.expm1(2 * t * np.log1p(-x[1])) / (x[1] * (2 - x[1])))
    np.testing.assert_allclose(nqm.expected_loss(model, t, lr=lr, batch_size=b), formula.sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(nqm.expected_loss(model, t, lr=lr, batch_size=b),
                                  nqm.expected_loss(model, t, lr=lr, beta=0.0, batch_size=b))


@settings(max_examples=40)
@given(st.floats(1e-4, 1.0), st.floats(0.0, 3.0), st.floats(1e-7, 1.95), st.floats(0.0, 0.9999),
       st.integers(1, 512), st.integers(0, 400))
def test_ema_matches_its_recursion(h, c_ratio, x, d, b, t):
    model = nqm.NoisyQuadratic([h], c=[h * c_ratio], s0=1.3)
    lr = x / h
    reference = ema_recursion(h, h * c_ratio, 1.3, lr, d, b, t, number=precise)[-1] * precise(model.weights[0])
    value = nqm.expected_loss(model, t, lr=lr, batch_size=b, ema=d)
    assert value == pytest.approx(float(reference), rel=1e-11)


def test_ema_zero_is_sgd_and_ema_broadcasts():
    model = nqm.NoisyQuadratic([1.0, 0.1, 0.01], c=[1.0, 0.5, 0.2])
    t = np.arange(0, 300, 7)
    np.testing.assert_allclose(nqm.expected_loss(model, t, lr=0.3, ema=0.0, batch_size=4),
                               nqm.expected_loss(model, t, lr=0.3, batch_size=4), rtol=1e-14)
    grid = nqm.expected_loss(model, 100, lr=[[0.1], [0.3]], ema=[0.0, 0.5, 0.9])
    assert grid.shape == (2, 3)
    assert grid[1, 0] == pytest.approx(nqm.expected_loss(model, 100, lr=0.3), rel=1e-14)


def test_exact_at_huge_t():
    model = nqm.NoisyQuadratic([1.0, 1e-3], c=[1.0, 1e-3])
    for beta in (0.0, 0.9, 0.99999):
        steady = nqm.steady_state_loss(model, lr=0.01, beta=beta, batch_size=8)
        assert nqm.expected_loss(model, 10**15, lr=0.01, beta=beta, batch_size=8) == pytest.approx(steady, rel=1e-13)
    # lr·h = 1e-12: after 10^11 steps e^{−0.2} of the start remains, the noise part grown as 1 − e^{−0.2}
    one = nqm.NoisyQuadratic([1.0], c=[1.0])
    decay = math.exp(2 * 10**11 * math.log1p(-1e-12))
    expected = 0.5 * (decay + 1e-24 * (1 - decay) / (1e-12 * (2 - 1e-12)))
    assert nqm.expected_loss(one, 10**11, lr=1e-12) == pytest.approx(expected, rel=1e-12)


# --- steady state ---------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_steady_state_is_where_the_recursion_settles(beta):
    model = nqm.NoisyQuadratic([1.0, 0.3, 0.05], c=[1.0, 2.0, 0.5], s0=[1.0, 0.0, 2.0])
    curve = loss_reference(model, 0.4, beta, 2, 0.0, 6000, number=float)
    steady = nqm.steady_state_loss(model, lr=0.4, beta=beta, batch_size=2)
    assert curve[-1] == pytest.approx(steady, rel=1e-12)
    with_ema = nqm.steady_state_loss(model, lr=0.4, batch_size=2, ema=0.9) if beta == 0 else None
    if with_ema is not None:
        per = [ema_recursion(h, c, s, 0.4, 0.9, 2, 6000, number=float)[-1] for h, c, s in zip(model.h, model.c, model.s0)]
        assert with_ema == pytest.approx(float(np.dot(model.weights, per)), rel=1e-12)


def test_steady_state_is_inf_outside_the_stable_region():
    model = nqm.NoisyQuadratic([1.0, 0.01])
    # heavy ball is stable for 0 < lr h < 2 + 2β
    assert np.isfinite(nqm.steady_state_loss(model, lr=1.99))
    assert nqm.steady_state_loss(model, lr=2.01) == np.inf
    assert np.isfinite(nqm.steady_state_loss(model, lr=3.79, beta=0.9))
    assert nqm.steady_state_loss(model, lr=3.81, beta=0.9) == np.inf
    assert nqm.steady_state_loss(model, lr=2.0) == np.inf  # the boundary: a root at −1
    assert nqm.steady_state_loss(model, lr=2.5, ema=0.5) == np.inf
    np.testing.assert_array_equal(np.isinf(nqm.steady_state_loss(model, lr=[1.0, 2.79, 2.81, 3.0], beta=0.4)), [False, False, True, True])
    # an unstable direction without weight (counts 0) is not part of the loss
    assert np.isfinite(nqm.steady_state_loss(nqm.NoisyQuadratic([1.0, 5.0], counts=[1, 0]), lr=1.0))
    # the expected loss itself stays exact: it grows, to inf once it overflows
    assert nqm.expected_loss(model, 10, lr=2.5) == pytest.approx(loss_reference(model, 2.5, 0.0, 1, 0.0, 10)[-1], rel=1e-12)
    assert nqm.expected_loss(model, 10**6, lr=2.5) == np.inf


# --- counts -----------------------------------------------------------------------------------


def test_counts_are_copies_and_an_empty_bin_adds_nothing():
    h, c = np.array([1.0, 0.2, 0.03]), np.array([0.5, 0.1, 0.9])
    binned = nqm.NoisyQuadratic(h, c, counts=[3, 0, 2])
    copies = nqm.NoisyQuadratic(np.repeat(h, [3, 0, 2]), np.repeat(c, [3, 0, 2]))
    without = nqm.NoisyQuadratic(h[[0, 2]], c[[0, 2]], counts=[3, 2])
    t = np.array([0, 1, 10, 1000])
    for kwargs in (dict(lr=0.5, beta=0.7, batch_size=4), dict(lr=0.5, ema=0.8)):
        expected = nqm.expected_loss(copies, t, **kwargs)
        np.testing.assert_allclose(nqm.expected_loss(binned, t, **kwargs), expected, rtol=1e-14)
        np.testing.assert_allclose(nqm.expected_loss(without, t, **kwargs), expected, rtol=1e-14)
        assert nqm.steady_state_loss(binned, **kwargs) == pytest.approx(nqm.steady_state_loss(copies, **kwargs), rel=1e-14)
    # an empty bin's h can be anything: even one whose direction would diverge
    odd = nqm.NoisyQuadratic([1.0, 0.2, 1e3], [0.5, 0.1, 0.9], counts=[3, 2, 0])
    assert np.isfinite(nqm.expected_loss(odd, 10**6, lr=0.5))


# --- steps_to_loss ------------------------------------------------------------------------------


def scan(model, threshold, steps, **kwargs):
    curve = nqm.expected_loss(model, np.arange(steps + 1), **kwargs)
    below = np.flatnonzero(curve <= threshold)
    return int(below[0]) if below.size else -1, curve


def dips(curve):
    """Thresholds just above the loss at steps where it reaches a new low and then rises."""
    d = np.diff(curve)
    lows = np.flatnonzero((d[:-1] < 0) & (d[1:] > 0)) + 1
    return [curve[k] * (1 + 1e-9) for k in lows if curve[k] < curve[:k].min()]


def test_steps_to_loss_where_momentum_makes_the_loss_oscillate():
    # complex roots, β near 1: the loss dips under the threshold and comes back up
    model = nqm.NoisyQuadratic([1.0, 0.2, 0.05])
    kwargs = dict(lr=0.5, beta=0.998, batch_size=10**4)
    _, curve = scan(model, 0.0, 20_000, **kwargs)
    thresholds = dips(curve)
    assert len(thresholds) > 8
    oscillating = 0
    for threshold in thresholds:
        expected, _ = scan(model, threshold, 20_000, **kwargs)
        oscillating += np.any(curve[expected + 1:] > threshold)
        assert nqm.steps_to_loss(model, threshold, max_steps=20_000, **kwargs) == expected
    assert oscillating == len(thresholds)  # each of these dips is left again
    # all of them at once, broadcast
    np.testing.assert_array_equal(nqm.steps_to_loss(model, thresholds, max_steps=20_000, **kwargs),
                                  [scan(model, thr, 20_000, **kwargs)[0] for thr in thresholds])


@settings(max_examples=30)
@given(configurations(max_directions=4), st.floats(0.0, 1.0), st.booleans())
def test_steps_to_loss_equals_a_scan(config, where, use_ema):
    model, lr, beta, b, p = config
    kwargs = dict(lr=lr, beta=beta, batch_size=b, precondition=p)
    if use_ema:
        kwargs = dict(lr=lr, batch_size=b, precondition=p, ema=0.9)
    _, curve = scan(model, 0.0, 3000, **kwargs)
    if not np.all(np.isfinite(curve)):
        return
    threshold = max(curve.min() + where * (curve.max() - curve.min()), 1e-300)
    expected, _ = scan(model, threshold, 3000, **kwargs)
    assert nqm.steps_to_loss(model, threshold, max_steps=3000, **kwargs) == expected


def test_steps_to_loss_against_the_recursion_and_its_edges():
    model = nqm.NoisyQuadratic([1.0, 0.1], c=[1.0, 0.1])
    curve = loss_reference(model, 0.3, 0.6, 8, 0.0, 300, number=float)
    threshold = curve[123] * (1 + 1e-9)
    expected = next(t for t, value in enumerate(curve) if value <= threshold)
    assert nqm.steps_to_loss(model, threshold, lr=0.3, beta=0.6, batch_size=8) == expected
    initial = model.initial_loss()
    assert nqm.steps_to_loss(model, initial, lr=0.3) == 0
    steady = nqm.steady_state_loss(model, lr=0.3, batch_size=8)
    assert nqm.steps_to_loss(model, steady * 0.999, lr=0.3, batch_size=8) == -1  # never: the noise floor
    assert nqm.steps_to_loss(model, threshold, lr=0.3, beta=0.6, batch_size=8, max_steps=expected - 1) == -1
    assert nqm.steps_to_loss(model, threshold, lr=2.5, batch_size=8) == -1  # unstable
    result = nqm.steps_to_loss(model, [[threshold], [initial]], lr=[0.3, 0.2], beta=0.6, batch_size=8)
    assert result.shape == (2, 2) and result.dtype == np.int64 and result[1, 1] == 0
    # far out: lr·h = 1e-9, the threshold reached after ~10⁹ steps
    tiny = nqm.NoisyQuadratic([1.0], c=[0.0])
    steps = nqm.steps_to_loss(tiny, 0.25, lr=1e-9)  # 0.5 (1 − 1e-9)^{2t} <= 0.25
    assert steps == math.ceil(math.log(0.5) / (2 * math.log1p(-1e-9)))
    assert nqm.expected_loss(tiny, steps, lr=1e-9) <= 0.25 < nqm.expected_loss(tiny, steps - 1, lr=1e-9)


# --- optimal_steps, critical batch size, the paper's findings ------------------------------------


def paper_model(bins=100):
    """h_i = 1/i, i = 1..10⁴, c = h, binned log-uniformly into 100 bins."""
    return nqm.NoisyQuadratic.binned(1.0 / np.arange(1, 10_001), bins=bins)


def test_binned():
    model = paper_model()
    assert model.n == 100 and model.dimension == 10_000
    h = 1.0 / np.arange(1, 10_001)
    assert np.dot(model.counts, model.h) == pytest.approx(h.sum(), rel=1e-13)  # the trace is kept
    assert np.dot(model.counts, model.c) == pytest.approx(h.sum(), rel=1e-13)
    assert model.counts[-1] == 1 and model.h[-1] == 1.0 and np.count_nonzero(model.counts == 0) > 0
    edges = np.geomspace(1e-4, 1.0, 101)
    assert np.all((model.h >= edges[:-1] * (1 - 1e-12)) & (model.h <= edges[1:] * (1 + 1e-12)))
    noisy = nqm.NoisyQuadratic.binned([1.0, 2.0, 4.0], c=[1.0, 0.0, 3.0], bins=2, s0=0.5)
    np.testing.assert_array_equal(noisy.counts, [1, 2])
    np.testing.assert_allclose(noisy.h, [1.0, 3.0])
    np.testing.assert_allclose(noisy.c, [1.0, 1.5])


def test_optimal_steps_equals_the_best_of_steps_to_loss():
    model = paper_model(bins=30)
    lr, beta, sizes = np.logspace(-6, 1, 15), 1 - np.logspace(-4, 0, 6), 2 ** np.arange(2, 20, 4)
    result = nqm.optimal_steps(model, 0.01, batch_size=sizes, lr=lr, beta=beta)
    every = nqm.steps_to_loss(model, 0.01, lr=lr[:, None, None], beta=beta[None, :, None], batch_size=sizes)
    for j in range(sizes.size):
        column = every[..., j].ravel()
        best = column[column >= 0].min()
        first = np.flatnonzero(column == best)[0]
        assert result.steps[j] == best
        assert (result.lr[j], result.beta[j]) == (lr[first // beta.size], beta[first % beta.size])
    assert "OptimalSteps" in repr(result)


def test_the_paper_s_findings():
    model = paper_model()
    sizes = 2 ** np.arange(2, 22)
    lr = np.logspace(-8, 1, 100)
    momentum = nqm.optimal_steps(model, 0.01, batch_size=sizes, lr=lr, beta=1 - np.logspace(-5, 0, 20))
    sgd = nqm.optimal_steps(model, 0.01, batch_size=sizes, lr=lr)
    assert np.all(momentum.steps > 0) and np.all(sgd.steps > 0)
    for result in (momentum, sgd):
        assert np.all(np.diff(result.steps) <= 0)
        logs = np.log2(result.steps)
        small = np.polyfit(np.log2(sizes[:5]), logs[:5], 1)[0]
        assert small == pytest.approx(-1, abs=0.05)  # perfect scaling at small batches: steps ∝ 1/b
        assert np.all(np.abs(np.diff(logs[-4:])) < 0.05)  # saturation at large ones
    # momentum raises the critical batch size (32768 against 1024 here) ...
    assert momentum.critical_batch_size() >= 16 * sgd.critical_batch_size()
    # ... and gains little at the smallest batch sizes (about 10 % fewer steps: β = 1 − 1e-5
    # damps the slowest directions critically), against 40× at the largest
    assert np.all(momentum.steps[:4] >= 0.8 * sgd.steps[:4])
    assert np.all(momentum.steps[-4:] < 0.05 * sgd.steps[-4:])
    assert nqm.critical_batch_size(model, 0.01, batch_size=sizes, lr=lr) == sgd.critical_batch_size()


def test_critical_batch_size_definition():
    sizes = 2 ** np.arange(0, 8)
    # steps = S_min (1 + B*/b) with B* = 16, S_min = 100: examples b·steps = 100 (b + 16)
    steps = (100 * (1 + 16 / sizes)).astype(np.int64)
    result = OptimalSteps(sizes, steps, np.ones(8), np.zeros(8), 0.01)
    assert result.critical_batch_size() == 16
    assert result.critical_batch_size(tolerance=0.0) == 1
    assert result.critical_batch_size(tolerance=100.0) == 128
    unreached = OptimalSteps(sizes, np.full(8, -1), np.full(8, np.nan), np.full(8, np.nan), 0.01)
    assert unreached.critical_batch_size() is None
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        result.critical_batch_size(-1.0)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, message", [
    (lambda: nqm.NoisyQuadratic([1.0, 0.0]), ValueError, "h must be > 0"),
    (lambda: nqm.NoisyQuadratic([1.0, -2.0]), ValueError, "h must be > 0"),
    (lambda: nqm.NoisyQuadratic([1.0], c=[-1.0]), ValueError, "c must be >= 0"),
    (lambda: nqm.NoisyQuadratic([1.0], counts=[1.5]), TypeError, "counts must be integers"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, batch_size=0), ValueError, "batch_size must be integers >= 1"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, batch_size=2.5), ValueError, "batch_size must be integers >= 1"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.0), ValueError, "lr must be > 0"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=-0.1), ValueError, "lr must be > 0"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, beta=1.0), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, beta=-0.1), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, ema=1.0), ValueError, r"ema must be in \[0, 1\)"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, ema=-0.5), ValueError, r"ema must be in \[0, 1\)"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1, lr=0.1, beta=0.5, ema=0.9), ValueError, "needs beta = 0"),
    (lambda: nqm.steady_state_loss(nqm.NoisyQuadratic([1.0]), lr=0.1, beta=[0.0, 0.5], ema=0.9), ValueError, "needs beta = 0"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), -1, lr=0.1), ValueError, "t must be integers"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), 1.5, lr=0.1), ValueError, "t must be integers"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), "3", lr=0.1), TypeError, "t must be integers"),
    (lambda: nqm.expected_loss([1.0], 1, lr=0.1), TypeError, "model must be a polyak.nqm.NoisyQuadratic"),
    (lambda: nqm.expected_loss(nqm.NoisyQuadratic([1.0]), [1, 2], lr=[0.1, 0.2, 0.3]), ValueError, "must broadcast"),
    (lambda: nqm.steps_to_loss(nqm.NoisyQuadratic([1.0]), 0.0, lr=0.1), ValueError, "threshold must be > 0"),
    (lambda: nqm.steps_to_loss(nqm.NoisyQuadratic([1.0]), -1.0, lr=0.1), ValueError, "threshold must be > 0"),
    (lambda: nqm.steps_to_loss(nqm.NoisyQuadratic([1.0]), 0.1, lr=0.1, max_steps=-1), ValueError, "max_steps must be >= 0"),
    (lambda: nqm.optimal_steps(nqm.NoisyQuadratic([1.0]), 0.0, batch_size=[1], lr=[0.1]), ValueError, "threshold must be > 0"),
    (lambda: nqm.optimal_steps(nqm.NoisyQuadratic([1.0]), 0.1, batch_size=[0, 1], lr=[0.1]), ValueError, "batch_size must be integers >= 1"),
    (lambda: nqm.optimal_steps(nqm.NoisyQuadratic([1.0]), 0.1, batch_size=[1], lr=[[0.1]]), ValueError, "lr must be a scalar or a non-empty 1-D"),
])
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
