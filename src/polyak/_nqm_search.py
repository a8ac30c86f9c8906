"""Steps to a loss threshold in the noisy quadratic model, exactly, and the fewest steps over a
grid of learning rates and momenta for each batch size (the paper's batch-size curves).

The loss is E[ℓ(θ_t)] = D(t) + N(t): a deterministic part D(t) = Σ ws φ_t² and a noise part
N(t) = Σ wn S_t, nondecreasing in t (S_t is a sum of squares). The first t with loss <= threshold
is found by a branch and bound over intervals of t: on [lo, hi] the loss is at least
N(lo) + Σ ws min φ², where the minimum of φ_t² over the interval is bounded per direction —
φ_hi² where both roots are >= 0 (φ_t >= 0 falls: 1 − φ_t = X Σ_{m<t} ψ_m); |r₁|^{2t}(1 + |r₂|)²
where both are < 0 (|φ_t| = |ψ_t| + P|ψ_{t−1}|); P^t X sin²(tω + χ)/sin²ω with the smallest
|sin| over the interval's phases for complex roots (0 when a phase crosses a multiple of π, the
phase taken modulo π at integer t, so ω and π − ω look alike); 0 otherwise. An interval whose
bound exceeds the threshold by more than its rounding error is skipped whole; the others are
split, down to single steps, where the loss is evaluated exactly. The search gallops: a skip
doubles the next interval, a failure halves it. Once N(t) alone exceeds the threshold, no later
step can reach it. The answer is therefore the first step whose loss, as `expected_loss`
computes it, is <= the threshold, also where momentum makes the loss oscillate.
"""

import numpy as np

from polyak._nqm_moments import (EPS, MAX_STEPS, ROUNDING, Directions, Moments, _scalar_or_array,
                                 weighted)
from polyak._nqm_model import _batch_sizes
from polyak._validation import as_int, finite_real_array

#: Rounding allowance of a bound or a loss summed over the directions, relative.
SUM_ROUNDING = 4 * ROUNDING * EPS


def as_threshold(value):
    threshold = np.asarray(finite_real_array(value, "threshold"), dtype=np.float64)
    if np.any(threshold <= 0):
        raise ValueError(f"threshold must be > 0 (a loss level to reach); got {threshold[threshold <= 0].flat[0]}")
    return threshold


def as_max_steps(value):
    """None (no limit but 2⁵³, where steps stop being exact in float64) or an int in [0, 2⁵³]."""
    return MAX_STEPS if value is None else as_int(value, "max_steps", minimum=0, maximum=MAX_STEPS)


class _Envelope:
    """Lower bounds of φ_t² over t in [lo, hi] (1 <= lo <= hi) per element (module docstring)."""

    def __init__(self, rec):
        real = ~rec.osc
        self.monotone = real & (rec.s1 > 0) & (rec.s2 > 0)
        self.negative = np.flatnonzero(real & (rec.s1 < 0) & (rec.s2 < 0))
        self.L1 = rec.L1[self.negative]
        self.negative_factor = (1 + np.exp(rec.L2[self.negative])) ** 2
        self.osc = np.flatnonzero(rec.osc)
        omega, sign = rec.omega[self.osc], rec.s1[self.osc]
        self.Lm = rec.Lm[self.osc]
        # |φ_t| = P^{t/2} √X |sin(tθ + χ)|/sin θ for roots √P e^{±iθ}, θ = ω (A > 0) or π − ω
        # (A < 0), ω in (0, π/2]; at integer t, |sin| sees π − ω as −ω
        self.rate = sign * omega / np.pi
        self.chi = np.arctan2(np.sin(omega), sign * np.cos(omega) - np.exp(self.Lm)) / np.pi

    def __call__(self, phi_lo, phi_hi, lo, hi):
        """Per element, from φ at both ends (lo, hi: scalars or per element)."""
        bound = np.where(self.monotone, phi_hi * phi_hi, 0.0)
        if self.negative.size:
            i = self.negative
            t = np.where(self.L1 < 0, _at(hi, i), _at(lo, i))
            bound[i] = np.exp(2 * t * self.L1) * self.negative_factor
        if self.osc.size:
            # no multiple of π between the phases at lo and hi: |sin| is smallest at an end, and
            # P^t decreasing: the bound is min(φ_lo² P^{hi−lo}, φ_hi²)
            i = self.osc
            lo_i, hi_i = _at(lo, i), _at(hi, i)
            same = np.floor(lo_i * self.rate + self.chi) == np.floor(hi_i * self.rate + self.chi)
            start = _at(phi_lo, i) ** 2 * np.exp(2 * (hi_i - lo_i) * self.Lm)
            bound[i] = np.where(same, np.minimum(start, _at(phi_hi, i) ** 2), 0.0)
        return bound


def _at(t, index):
    return t[index] if np.ndim(t) else t


class _Problem:
    """Queries of n elements each (row-major), with their evaluators."""

    def __init__(self, rec, ws, wn, n):
        self.rec, self.ws, self.wn, self.n = rec, ws, wn, n
        self.moments = Moments(rec)
        self.envelope = _Envelope(rec)

    @property
    def rows(self):
        return self.ws.size // self.n

    def take(self, rows):
        elements = (rows[:, None] * self.n + np.arange(self.n)).ravel()
        return _Problem(self.rec.take(elements), self.ws[elements], self.wn[elements], self.n)

    def sums(self, values):
        return values.reshape(-1, self.n).sum(axis=1)

    def per_element(self, t):
        return np.repeat(t, self.n) if np.ndim(t) else t

    @np.errstate(over="ignore", invalid="ignore")
    def evaluate(self, t, target=np.inf):
        """The loss (summed as expected_loss sums it), D(t), N(t), N's absolute error estimate
        per row and φ_t per element (t: scalar or per row)."""
        phi, S, relative = self.moments(self.per_element(t), target)
        deterministic, noise = weighted(self.ws, phi * phi), weighted(self.wn, S)
        return (self.sums(deterministic + noise), self.sums(deterministic), self.sums(noise),
                self.sums(weighted(noise, relative)), phi)

    @np.errstate(over="ignore", invalid="ignore")
    def lower_deterministic(self, phi_lo, phi_hi, lo, hi):
        """Σ ws min_{t in [lo, hi]} φ_t² per row, bounded below, from φ at both ends."""
        return self.sums(weighted(self.ws, self.envelope(phi_lo, phi_hi, self.per_element(lo), self.per_element(hi))))


#: Where the bounds stall (the loss hovers just above the threshold: a slow approach, or
#: oscillations), runs of consecutive steps are evaluated at once: first this many, doubling
#: up to BLOCK_MAX while the stall lasts, at most BLOCK_ELEMENTS (step, direction) pairs a call.
BLOCK, BLOCK_MAX, BLOCK_ELEMENTS = 64, 2**14, 2**18
#: Bound failures since the last skip after which a row evaluates a block.
STALL = 4


def _exact(problem, t, threshold):
    """loss(t), N(t) and N's error estimate per row (recomputed at full accuracy where the fast
    estimate leaves the comparison with the threshold open), φ_t per element."""
    loss, _, N, N_error, phi = problem.evaluate(t)
    unsure = np.flatnonzero(~_above(loss, N_error, threshold) & ~_below(loss, N_error, threshold))
    if unsure.size:
        loss[unsure], _, N[unsure], N_error[unsure], _ = problem.take(unsure).evaluate(t[unsure], target=0.0)
    return loss, N, N_error, phi


@np.errstate(invalid="ignore", over="ignore")
def _above(value, error, threshold):
    """value (a loss or a lower bound of one) is above the threshold beyond its rounding error
    `error` (an infinite value is above; an infinite error on a finite value decides nothing)."""
    return np.isposinf(value) | (value - error - SUM_ROUNDING * value > threshold)


@np.errstate(invalid="ignore", over="ignore")
def _below(value, error, threshold):
    """value is at or below the threshold beyond its rounding error."""
    return value + error + SUM_ROUNDING * value <= threshold


def _never(N, N_error, threshold):
    """N(t) alone is above the threshold, beyond its rounding: so is the loss at every later t."""
    return _above(N, N_error, threshold)


def _block(problem, rows, f, cap, size, threshold):
    """Exact losses at f + 1, ..., f + size (capped) for `rows`: (first hit or −1, never, steps done)."""
    size = int(max(1, min(size, BLOCK_ELEMENTS // (rows.size * problem.n))))
    offsets = np.arange(1, size + 1)
    t = np.minimum(f[:, None] + offsets, cap[:, None])
    loss, N, N_error, _ = _exact(problem.take(np.repeat(rows, size)), t.ravel(), np.repeat(threshold, size))
    loss, N, N_error = (v.reshape(rows.size, size) for v in (loss, N, N_error))
    hits = loss <= threshold[:, None]
    first = np.where(hits.any(axis=1), t[np.arange(rows.size), hits.argmax(axis=1)], -1)
    never = _never(N[:, -1], N_error[:, -1], threshold) & (first < 0)
    return first, never, size


def narrow(problem, threshold, start, stop, group, best, parts):
    """One round of a `parts`-ary branch and bound on [start, stop] per row: exact losses at
    `parts` points splitting it, the pieces before the first one the bounds cannot exclude
    discarded. Returns the new start (inf where the whole range is excluded); a hit at a
    split point lowers its group's best (the hit is an upper bound of that row's answer)."""
    rows = np.arange(problem.rows)
    span = stop - start + 1
    new_start, hit_at = np.full(rows.size, np.inf), np.full(rows.size, np.inf)
    left = start - 1
    _, _, N_left, N_error_left, phi_left = problem.evaluate(left)
    for k in range(1, parts + 1):
        right = start - 1 + np.floor(k * span / parts)
        loss, _, N, N_error, phi = problem.evaluate(right)
        piece = right > left
        # (left, right] inside [left, right]: the bound from φ at both ends
        bound = N_left + problem.lower_deterministic(phi_left, phi, left, np.maximum(right, left))
        excluded = ~piece | _above(bound, N_error_left, threshold)
        first = ~excluded & np.isinf(new_start)
        new_start[first] = left[first] + 1
        # a certain hit only (the fast estimate's error included): it bounds the answer above
        hit = piece & np.isfinite(new_start) & np.isinf(hit_at) & _below(loss, N_error, threshold)
        hit_at[hit] = right[hit]
        left, N_left, N_error_left, phi_left = np.where(piece, right, left), N, N_error, phi
    np.minimum.at(best, group, hit_at)
    return new_start


def first_crossing(problem, threshold, start, stop, group=None, best=None):
    """For each row: the first t in [start, stop] with D(t) + N(t) <= threshold, −1 if none.

    The loss is known to exceed the threshold before `start` (start >= 1). With `group` and
    `best` (a float array per group, updated in place), a row stops once its search passes its
    group's best answer so far (it cannot beat it; its answer is then −1).
    """
    rows = problem.rows
    answer = np.full(rows, -1, np.int64)
    f = np.asarray(start, dtype=np.float64).copy()
    stop = np.broadcast_to(np.asarray(stop, dtype=np.float64), (rows,)).copy()
    threshold = np.broadcast_to(threshold, (rows,))
    length, stalls, block = np.ones(rows), np.zeros(rows), np.full(rows, float(BLOCK))
    active = np.arange(rows)  # original row of each row of `problem`
    live = f <= stop
    while np.any(live):
        if np.count_nonzero(live) < active.size // 2:  # compact
            keep = np.flatnonzero(live)
            problem, active, f, length, stalls, block, live = (
                problem.take(keep), active[keep], f[keep], length[keep], stalls[keep], block[keep], live[keep])
        thr, cap = threshold[active], stop[active]
        t = np.minimum(f, cap)
        loss, N, N_error, phi = _exact(problem, t, thr)
        hit = live & (loss <= thr)
        never = live & ~hit & _never(N, N_error, thr)
        hi = np.minimum(f + length - 1, cap)
        wide = live & ~hit & ~never & (hi > f)
        skip = np.zeros_like(wide)
        if np.any(wide):
            phi_hi = problem.moments.phi(problem.per_element(np.where(wide, hi, t)))
            bound = N + problem.lower_deterministic(phi, phi_hi, t, np.where(wide, hi, t))
            skip = wide & _above(bound, N_error, thr)
        found = np.where(hit, f, -1)
        step = np.where(skip, hi + 1 - f, 1.0)
        # a skip doubles the next interval; a bound that fails halves it; a single step grows it
        length = np.where(skip | ~wide, np.minimum(2 * length, MAX_STEPS), np.maximum(length // 2, 1))
        stalls = np.where(skip, 0, stalls + 1)
        stalled = np.flatnonzero(live & ~hit & ~never & ~skip & (stalls >= STALL) & (f < cap))
        if stalled.size:
            first, block_never, size = _block(problem.take(stalled), np.arange(stalled.size), f[stalled],
                                              cap[stalled], np.max(block[stalled]), thr[stalled])
            found[stalled], never[stalled] = first, block_never
            step[stalled] = size + 1
            length[stalled], stalls[stalled] = size, 0
            block[stalled] = np.minimum(2 * block[stalled], BLOCK_MAX)
        block = np.where(skip, BLOCK, block)
        done = live & (found >= 0)
        answer[active[done]] = found[done]
        if group is not None:
            np.minimum.at(best, group[active[done]], found[done])
        f = f + step
        live &= ~done & ~never & (f <= cap)
        if group is not None:
            live &= f <= best[group[active]]
    return answer


def steps_to_loss(model, threshold, *, lr, beta=0.0, batch_size=1, precondition=0.0, ema=None, max_steps=None):
    """The first step t with E[ℓ(θ_t)] <= threshold, exactly (−1 if no t <= max_steps reaches it).

    "Exactly": the answer is the first t at which :func:`expected_loss` is <= threshold, as a scan
    over every step would find it, also where momentum makes the expected loss fall below the
    threshold and rise again (a branch and bound over intervals of steps, O(n log t) per query
    where the loss falls steadily; see the module docstring of ``polyak._nqm_search``).

    Parameters
    ----------
    model : NoisyQuadratic
    threshold : float or array_like
        The loss to reach, > 0.
    lr, beta, batch_size, precondition, ema
        As in :func:`expected_loss`; all broadcast together with `threshold`.
    max_steps : int, optional
        The last step considered; by default 2⁵³ (no limit in practice: a configuration whose
        steady-state loss is below the threshold gets there, one whose noise alone exceeds it
        is stopped as soon as it does).

    Returns
    -------
    int or ndarray of int64
        −1 where the threshold is not reached by max_steps (or never).
    """
    threshold = as_threshold(threshold)
    stop = as_max_steps(max_steps)
    directions = Directions.build(model, lr=lr, beta=beta, batch_size=batch_size, precondition=precondition, ema=ema,
                                  extra={"threshold": threshold})
    thr = np.ascontiguousarray(directions.extras["threshold"]).ravel()
    initial = directions.per_query(directions.ws).ravel()  # φ₀ = 1, S₀ = 0
    answer = np.where(initial <= thr, 0, -1).astype(np.int64)
    rest = np.flatnonzero(answer < 0)
    if rest.size and stop >= 1:
        problem = _Problem(directions.rec, directions.ws, directions.wn, directions.n)
        if rest.size < thr.size:
            problem = problem.take(rest)
        answer[rest] = first_crossing(problem, thr[rest], np.ones(rest.size), stop)
    return _scalar_or_array(answer.reshape(directions.shape))


#: Ratio between consecutive steps of optimal_steps' sweep over t; rounds of `narrow` after it.
SWEEP_RATIO, NARROW_ROUNDS, NARROW_PARTS = 2.0, 2, 8


class OptimalSteps:
    """The fewest steps to a loss threshold for each batch size, over a grid of (lr, β).

    Attributes
    ----------
    batch_size : ndarray of int64, shape (B,)
    steps : ndarray of int64, shape (B,)
        The fewest steps over the grid (−1 where no configuration reaches the threshold).
    lr, beta : ndarray, shape (B,)
        The minimizing learning rate and momentum (NaN where steps is −1); ties go to the first
        configuration in the grid's order (lr slowest).
    threshold : float
    """

    def __init__(self, batch_size, steps, lr, beta, threshold):
        self.batch_size, self.steps, self.lr, self.beta = batch_size, steps, lr, beta
        self.threshold = threshold

    def critical_batch_size(self, tolerance=1.0):
        """The largest batch size up to which training is still close to perfectly data-parallel.

        With E(b) = b · steps(b) the examples a batch size needs and E_min its smallest value
        over the batch sizes that reach the threshold: the largest b such that every reaching
        batch size b' <= b has E(b') <= (1 + tolerance) E_min. Under the model
        steps(b) = S_min (1 + B*/b) (McCandlish et al. 2018), tolerance = 1 gives B* (steps twice
        their minimum, examples twice theirs). None when no batch size reaches the threshold.
        """
        tolerance = float(finite_real_array(tolerance, "tolerance"))
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0; got {tolerance}")
        reached = self.steps >= 0
        if not np.any(reached):
            return None
        order = np.argsort(self.batch_size[reached], kind="stable")
        sizes, steps = self.batch_size[reached][order], self.steps[reached][order]
        examples = sizes * steps
        within = examples <= (1 + tolerance) * examples.min()
        last = len(sizes) if within.all() else int(np.argmin(within))
        return int(sizes[max(last - 1, 0)])

    def __repr__(self):
        rows = "\n".join(f"  b={b:>8d}  steps={s:>12d}  lr={lr:.4g}  beta={beta:.6g}"
                         for b, s, lr, beta in zip(self.batch_size, self.steps, self.lr, self.beta))
        return f"OptimalSteps(threshold={self.threshold:g},\n{rows})"


def _grid(values, name):
    array = np.asarray(finite_real_array(values, name), dtype=np.float64)
    if array.ndim > 1 or array.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D array; got shape {array.shape}")
    return np.atleast_1d(array)


def optimal_steps(model, threshold, *, batch_size, lr, beta=0.0, precondition=0.0, max_steps=None):
    """For each batch size, the fewest steps to E[ℓ] <= threshold over the grid lr × beta.

    Every configuration's steps are those of :func:`steps_to_loss` (exact); a configuration is
    only searched as far as it could still beat the best one of its batch size. The grid is
    swept over t = 1, 2, 4, ...: every (lr, β) evaluated once per sweep step for all batch sizes
    (the roots do not depend on b, the noise part scales as 1/b), an interval of steps discarded
    for a batch size where the loss is provably above the threshold on it (see
    ``polyak._nqm_search``), a batch size's search of a configuration ending where it can no
    longer beat the best crossing found; the surviving brackets are then searched exactly.

    Parameters
    ----------
    model : NoisyQuadratic
    threshold : float
        The loss to reach, > 0.
    batch_size : array_like of int
        The batch sizes (1-D).
    lr, beta : float or 1-D array_like
        The grid: every learning rate with every momentum.
    precondition : float
        p of the preconditioner H^(−p), one for the whole grid.
    max_steps : int, optional
        The last step considered (default 2⁵³).

    Returns
    -------
    OptimalSteps
    """
    threshold = float(as_threshold(threshold))
    stop = float(as_max_steps(max_steps))
    sizes = np.atleast_1d(_batch_sizes(batch_size))
    if sizes.ndim != 1:
        raise ValueError(f"batch_size must be a scalar or a 1-D array of integers; got shape {sizes.shape}")
    lr, beta = _grid(lr, "lr"), _grid(beta, "beta")
    precondition = np.asarray(finite_real_array(precondition, "precondition"), dtype=np.float64)
    if precondition.ndim:
        raise ValueError(f"precondition must be a scalar for optimal_steps; got shape {precondition.shape}")
    directions = Directions.build(model, lr=lr[:, None], beta=beta[None, :], batch_size=1, precondition=precondition)
    sizes = sizes.astype(np.int64)
    problem = _Problem(directions.rec, directions.ws, directions.wn, directions.n)
    steps, config = _fewest_steps(problem, sizes.astype(np.float64), threshold, stop)
    found = steps >= 0
    grid_lr, grid_beta = np.repeat(lr, beta.size), np.tile(beta, lr.size)
    safe = np.where(found, config, 0)
    return OptimalSteps(sizes, steps, np.where(found, grid_lr[safe], np.nan), np.where(found, grid_beta[safe], np.nan),
                        threshold)


def critical_batch_size(model, threshold, *, batch_size, lr, beta=0.0, precondition=0.0, tolerance=1.0, max_steps=None):
    """``optimal_steps(...).critical_batch_size(tolerance)``: see :meth:`OptimalSteps.critical_batch_size`."""
    return optimal_steps(model, threshold, batch_size=batch_size, lr=lr, beta=beta, precondition=precondition,
                         max_steps=max_steps).critical_batch_size(tolerance)


def _sweep_steps(stop):
    steps, t = [], 1.0
    while t < stop:
        steps.append(t)
        t = max(t + 1, np.floor(t * SWEEP_RATIO))
    steps.append(stop)
    return steps


@np.errstate(over="ignore", invalid="ignore")
def _fewest_steps(problem, sizes, threshold, stop):
    """Per batch size: the fewest steps over the problem's rows (configurations, noise at b = 1)
    and the first row attaining it; −1 where none reaches the threshold by `stop`."""
    C, B = problem.rows, sizes.size
    initial = problem.sums(problem.ws)  # the loss at t = 0
    if np.any(initial <= threshold):
        return np.zeros(B, np.int64), np.full(B, int(np.argmax(initial <= threshold)))
    best = np.full(B, np.inf)
    alive = np.ones((C, B), bool)  # every t before lo is above the threshold
    lo = np.ones((C, B))
    candidate = np.zeros((C, B), bool)
    noise_before, noise_error_before = np.zeros(C), np.zeros(C)  # N(0) = 0
    phi_before = np.ones(problem.ws.size)  # φ₀ = 1
    rows, sub = np.arange(C), problem
    previous = 0.0
    for t in _sweep_steps(stop) if stop >= 1 else []:
        live_rows = np.flatnonzero(alive.any(axis=1))
        if live_rows.size == 0:
            break
        if live_rows.size < rows.size // 2:
            sub, rows = sub.take(np.searchsorted(rows, live_rows)), live_rows
        _, D, N, N_error, phi = sub.evaluate(t)
        elements = (rows[:, None] * problem.n + np.arange(problem.n)).ravel()
        low = sub.lower_deterministic(phi_before[elements], phi, previous, t)  # on [previous, t] ⊇ (previous, t]
        a = alive[rows]
        bound = noise_before[rows, None] / sizes + low[:, None]
        excluded = _above(bound, noise_error_before[rows, None] / sizes, threshold)
        loss = D[:, None] + N[:, None] / sizes
        sure_hit = _below(loss, N_error[:, None] / sizes, threshold)
        new = a & ~excluded  # a crossing may lie in (previous, t]: searched exactly later
        candidate[rows] |= new
        best = np.minimum(best, np.min(np.where(new & sure_hit, t, np.inf), axis=0))
        never = _never(N[:, None] / sizes, N_error[:, None] / sizes, threshold)
        alive[rows] = a & excluded & ~never
        lo[rows] = np.where(alive[rows], t + 1, lo[rows])
        alive &= lo <= best
        noise_before[rows], noise_error_before[rows] = N, N_error
        phi_before[elements] = phi
        previous = t
    # the brackets that can still match the best: exact searches, pruned as bests are found
    pairs = np.argwhere(candidate & (lo <= np.minimum(best, stop)))
    steps, config = np.full(B, -1, np.int64), np.zeros(B, np.int64)
    if pairs.size:
        c, b = pairs[:, 0], pairs[:, 1]
        searched = problem.take(c)
        searched.wn = (searched.wn.reshape(-1, problem.n) / sizes[b, None]).ravel()
        thr = np.full(c.size, threshold)
        start = lo[c, b]
        keep = np.arange(c.size)
        for _ in range(NARROW_ROUNDS):
            start[keep] = narrow(searched.take(keep), thr[keep], start[keep], np.minimum(best[b[keep]], stop),
                                 b[keep], best, NARROW_PARTS)
            keep = np.flatnonzero(start <= np.minimum(best[b], stop))
        answer = np.full(c.size, -1, np.int64)
        if keep.size:
            answer[keep] = first_crossing(searched.take(keep), thr[keep], start[keep], np.minimum(best[b[keep]], stop),
                                          group=b[keep], best=best)
        for j in range(B):
            mine = (b == j) & (answer >= 0)
            if np.any(mine):
                value = answer[mine].min()
                steps[j], config[j] = value, c[mine][answer[mine] == value].min()
    return steps, config
