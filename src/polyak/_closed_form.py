"""The iterates of a plan in closed form: O(n) per query whatever the number of steps.

In the eigenbasis of Q each coordinate's state (u, z − z*) is multiplied by the 2×2 matrix
M = [[β, aλ], [−kβ, 1 − (ka + e)λ]] per step (the canonical update with a constant learning
rate). Mᵀ comes from Cayley–Hamilton in Lagrange form, Mᵀ = d_T M − det(M) d_{T−1} I with
d_T = (μ₁ᵀ − μ₂ᵀ)/(μ₁ − μ₂), evaluated as μ₂ᵀ⁻¹ · expm1(T·log1p(δ))/δ with δ = μ₁/μ₂ − 1
(|μ₂| >= |μ₁|), which is exact at a double root (d_T = T μᵀ⁻¹) and stable near one.
Coordinates with λ = 0 (a constant gradient) use the geometric sums. Torch's undamped first
step is taken explicitly. Accuracy: a coordinate with 0 < |λ| ≪ 1 and c ≠ 0 is shifted by
its minimizer −c/λ, which costs about ε·|c/λ| of absolute accuracy (e.g. 1e-4 for λ = 1e-12,
c = 1); λ exactly 0 is exact.
"""

import numpy as np

from polyak.plans import COLUMNS
from polyak.reference import CHECK_EVERY, step_coefficients

#: Every configuration's checks are evaluated when checks × configurations × n is at most this.
CHECK_BUDGET = 2 * 10**7


def trace_and_determinant(beta, a, k, e, lam):
    """Trace and determinant of M = [[β, aλ], [−kβ, 1 − (ka + e)λ]], broadcast."""
    return beta + 1 - (k * a + e) * lam, beta * (1 - e * lam)


@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def spectral_radius_of(trace, det):
    """max |μ| over the roots of μ² − trace·μ + det = 0.

    Computed for the polynomial scaled by s = max(|trace|, √|det|) (roots μ/s), so that no
    intermediate overflows where the radius itself is a float (|trace| up to the largest).
    """
    trace, det = np.asarray(trace, dtype=np.float64), np.asarray(det, dtype=np.float64)
    scale = np.maximum(np.abs(trace), np.sqrt(np.abs(det)))
    safe = np.where(scale > 0, scale, 1.0)
    t, d = trace / safe, det / safe / safe
    discriminant = t * t - 4 * d
    real = 0.5 * (np.abs(t) + np.sqrt(np.maximum(discriminant, 0.0)))
    radius = np.where(scale > 0, scale * np.where(discriminant >= 0, real, np.sqrt(np.abs(d))), 0.0)
    return np.where(np.isinf(scale), np.inf, radius)  # a trace or determinant beyond the float range


def constant_multiplier(plan):
    """The plan's one learning-rate multiplier; a ValueError when the schedule varies."""
    schedule = plan.schedule[: max(plan.steps, 1)]
    if not np.all(schedule == schedule[0]):
        raise ValueError("the closed form needs a constant learning rate: the rule has a schedule that varies")
    return float(schedule[0])


def run(plan):
    """x, u, records and steps taken of a quadratic plan, in float64: see the module docstring.

    As the kernels do, a configuration has diverged at the first check (after every
    CHECK_EVERY-th step and the last) where some |xᵢ| is beyond the plan's bound or NaN, and
    stops at the last step before the first of that check's interval whose x is beyond the
    bound: its x and u are those of that step, its later records NaN. The checks and the
    steps of that interval are evaluated in closed form too, one by one: for every
    configuration when checks × B × n is at most CHECK_BUDGET, else (a long run, where
    evaluating every check would cost what running the steps does) only for those whose
    last iterate is beyond the bound. In that case a configuration that leaves the bound at
    a check and comes back within it by the last step (possible with a bound near the
    iterates' scale) is reported as not diverged, where a run reports it diverged.
    Returns (x, u, loss, trajectory, steps_taken, diverged).
    """
    problem, index = plan.problem, plan.problem_index
    lam, rotation = problem.eigenbasis()
    lam = lam.astype(np.float64)
    if rotation is not None:
        # eigh returns ±1e-16·max|λ| for a zero eigenvalue: count that noise as 0, or the
        # shift by −c/λ would cancel catastrophically
        noise = 64 * np.finfo(np.float64).eps * np.max(np.abs(lam), axis=-1, keepdims=True)
        lam = np.where(np.abs(lam) <= noise, 0.0, lam)
        rotation = rotation.astype(np.float64) if rotation.ndim == 2 else rotation[index].astype(np.float64)
    B, n = len(plan), plan.dim
    lam = np.broadcast_to(lam[index] if lam.shape[0] > 1 else lam, (B, n))
    c, b = problem.c.astype(np.float64)[index], problem.b.astype(np.float64)[index]
    basis = _Basis(rotation)
    x0, u0 = plan.start(np.float64)
    iterates = _Iterates(plan, lam, basis.into(c), basis.into(x0), basis.into(u0))

    z, u = iterates.at(plan.steps)
    x = basis.back(z)
    steps_taken = np.full(B, plan.steps, np.int64)
    beyond = ~_within(x, plan.divergence_bound)
    checks = max(plan.steps - 1, 0) // CHECK_EVERY
    candidates = np.arange(B) if checks * B * n <= CHECK_BUDGET else np.flatnonzero(beyond)
    diverged = np.zeros(B, bool)
    if candidates.size:
        first = _first_check_beyond(plan, iterates, basis, candidates)
        found = (first < plan.steps) | beyond[candidates]
        rows = candidates[found]
        diverged[rows] = True
        steps_taken[rows] = _last_within(plan, iterates, basis, rows, first[found])
        for t in np.unique(steps_taken[rows]):
            rows = np.flatnonzero(diverged & (steps_taken == t))
            z[rows], u[rows] = iterates.at(int(t), rows)
        x = basis.back(z)

    K = plan.recorded_at.size
    loss = np.full((B, K), np.nan) if "loss" in plan.record else None
    trajectory = np.full((B, K, n), np.nan) if "trajectory" in plan.record else None
    for r, t in enumerate(plan.recorded_at):
        rows = np.flatnonzero(steps_taken >= t)  # records after a stop did not happen: NaN
        z_t, _ = iterates.at(int(t), rows)
        if loss is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                loss[rows, r] = b[rows] + np.sum(z_t * (0.5 * lam[rows] * z_t + iterates.c[rows]), axis=1)
        if trajectory is not None:
            trajectory[rows, r] = basis.back(z_t, rows)
    return x, basis.back(u), loss, trajectory, steps_taken, diverged


def _within(x, bound):
    with np.errstate(invalid="ignore"):
        return np.all(np.abs(x) <= bound, axis=1)


def _first_check_beyond(plan, iterates, basis, rows):
    """For each of `rows`: its first check before the last step beyond the bound (`steps`
    where there is none)."""
    stops = np.full(rows.size, plan.steps, np.int64)
    waiting = np.ones(rows.size, bool)
    for t in range(CHECK_EVERY, plan.steps, CHECK_EVERY):
        z, _ = iterates.at(t, rows[waiting])
        found = ~_within(basis.back(z, rows[waiting]), plan.divergence_bound)
        stops[np.flatnonzero(waiting)[found]] = t
        waiting[np.flatnonzero(waiting)[found]] = False
        if not waiting.any():
            break
    return stops


def _last_within(plan, iterates, basis, rows, checks):
    """For each of `rows`, found beyond the bound at the check after step checks[i]: the last
    step, before the first of that check's interval whose x is beyond the bound."""
    starts = (checks - 1) // CHECK_EVERY * CHECK_EVERY
    last = checks - 1
    waiting = np.ones(rows.size, bool)
    for offset in range(1, CHECK_EVERY + 1):
        t = starts + offset
        waiting &= t <= checks
        for step in np.unique(t[waiting]):
            group = np.flatnonzero(waiting & (t == step))
            z, _ = iterates.at(int(step), rows[group])
            found = group[~_within(basis.back(z, rows[group]), plan.divergence_bound)]
            last[found] = step - 1
            waiting[found] = False
        if not waiting.any():
            break
    return last


class _Iterates:
    """The state (z, u) of every configuration after any number of steps, in the eigenbasis."""

    def __init__(self, plan, lam, c, z0, u0):
        self.table = plan.coefficients.astype(np.float64)
        self.multiplier = constant_multiplier(plan)
        self.lam, self.c, self.z0, self.u0 = lam, c, z0, u0
        a_first, a_fixed = (self.table[:, COLUMNS.index(name)] for name in ("a_first", "a_fixed"))
        self.special_first_step = bool(np.any(a_first != a_fixed))

    def at(self, t, rows=slice(None)):
        """(z_t, u_t) of the configurations `rows`."""
        table, lam, c = self.table[rows], self.lam[rows], self.c[rows]
        z, u = self.z0[rows], self.u0[rows]
        if t and self.special_first_step:  # torch's undamped first step, taken on its own
            z, u = _advance(table, self.multiplier, lam, c, z, u, 1, first_step=True)
            t -= 1
        return _advance(table, self.multiplier, lam, c, z, u, t, first_step=False)


class _Basis:
    """Rotation into and out of the eigenbasis (none for a diagonal problem)."""

    def __init__(self, rotation):
        self.rotation = rotation

    def into(self, v):
        if self.rotation is None:
            return np.asarray(v, dtype=np.float64)
        return v @ self.rotation if self.rotation.ndim == 2 else np.einsum("bi,bij->bj", v, self.rotation)

    @np.errstate(over="ignore", invalid="ignore")  # a diverging iterate overflows: a result
    def back(self, v, rows=slice(None)):
        """v in the original coordinates (`rows`: the configurations v belongs to)."""
        if self.rotation is None:
            return v
        if self.rotation.ndim == 2:
            return v @ self.rotation.T
        return np.einsum("bj,bij->bi", v, self.rotation[rows])


@np.errstate(over="ignore", invalid="ignore")  # a diverging iteration overflows: a result
def _advance(table, multiplier, lam, c, z, u, steps, *, first_step):
    """`steps` steps of the canonical update on each eigen-coordinate, in closed form."""
    if steps == 0:
        return z.copy(), u.copy()
    beta, a, k, e = (np.broadcast_to(v, lam.shape) for v in step_coefficients(table, multiplier, first_step))
    curved = lam != 0
    safe_lam = np.where(curved, lam, 1.0)
    z_star = np.where(curved, -c / safe_lam, 0.0)
    w = z - z_star  # the gradient is λ w: a linear recurrence in (u, w)
    trace, det = trace_and_determinant(beta, a, k, e, lam)
    d_t, d_before = _lucas(trace, det, steps)
    m00, m01 = beta, a * lam
    m10, m11 = -k * beta, 1 - (k * a + e) * lam
    u_new = d_t * (m00 * u + m01 * w) - det * d_before * u
    w_new = d_t * (m10 * u + m11 * w) - det * d_before * w
    # λ = 0: u_t = β u_{t−1} + a c, x_t = x_{t−1} − k u_t − e c (a constant gradient)
    geometric = np.where(beta == 1, steps, (1 - beta**steps) / np.where(beta == 1, 0.5, 1 - beta))
    u_flat = beta**steps * u + a * c * geometric
    sum_u = u * beta * geometric + a * c * np.where(
        beta == 1, steps * (steps + 1) / 2, (steps - beta * geometric) / np.where(beta == 1, 0.5, 1 - beta)
    )
    z_flat = z - k * sum_u - e * c * steps
    return np.where(curved, w_new + z_star, z_flat), np.where(curved, u_new, u_flat)


def _lucas(trace, det, steps):
    """(d_T, d_{T−1}) with d_T = (μ₁ᵀ − μ₂ᵀ)/(μ₁ − μ₂) for the roots of μ² − trace·μ + det."""
    root = np.sqrt((trace * trace - 4 * det).astype(np.complex128))
    first, second = 0.5 * (trace - root), 0.5 * (trace + root)
    swap = np.abs(first) > np.abs(second)
    small, large = np.where(swap, second, first), np.where(swap, first, second)
    # d_T = μ₂ᵀ⁻¹ φ_T(δ), φ_T(δ) = ((1 + δ)ᵀ − 1)/δ with δ = μ₁/μ₂ − 1: φ = T at a double root
    # (δ = 0) and 1 when μ₁ = 0 (δ = −1); both roots 0 (μ₂ = 0) leaves d_1 = 1, d_T = 0 after
    both_zero = large == 0
    delta = np.where(both_zero | (small == 0), 0.0, small / np.where(both_zero, 1.0, large) - 1)
    plain = (delta == 0) | (small == 0)

    safe = np.where(plain, 1.0, delta)
    log_ratio = np.log1p(safe)  # log(μ₁/μ₂), computed once for both T and T − 1
    log_large = np.log(np.where(both_zero, 1.0, large))

    def divided_difference(t):
        if t == 0:
            return np.zeros(trace.shape)
        phi = np.where(delta == 0, t, np.expm1(t * log_ratio) / safe)
        phi = np.where(small == 0, 1.0, phi)
        value = np.exp((t - 1) * log_large) * phi
        return np.where(both_zero, 1.0 if t == 1 else 0.0, value).real

    return divided_difference(steps), divided_difference(steps - 1)
