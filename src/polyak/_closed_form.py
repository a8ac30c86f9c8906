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
from polyak.reference import step_coefficients


def trace_and_determinant(beta, a, k, e, lam):
    """Trace and determinant of M = [[β, aλ], [−kβ, 1 − (ka + e)λ]], broadcast."""
    return beta + 1 - (k * a + e) * lam, beta * (1 - e * lam)


def spectral_radius_of(trace, det):
    """max |μ| over the roots of μ² − trace·μ + det = 0."""
    discriminant = trace * trace - 4 * det
    real = 0.5 * (np.abs(trace) + np.sqrt(np.maximum(discriminant, 0.0)))
    return np.where(discriminant >= 0, real, np.sqrt(np.abs(det)))


def constant_multiplier(plan):
    """The plan's one learning-rate multiplier; a ValueError when the schedule varies."""
    schedule = plan.schedule[: max(plan.steps, 1)]
    if not np.all(schedule == schedule[0]):
        raise ValueError("the closed form needs a constant learning rate: the rule has a schedule that varies")
    return float(schedule[0])


def run(plan):
    """x, u, loss and trajectory records of a quadratic plan, in float64: see the module docstring."""
    problem, index = plan.problem, plan.problem_index
    multiplier = constant_multiplier(plan)
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
    z0, u0 = basis.into(np.broadcast_to(plan.x0, (B, n))), basis.into(_start_velocity(plan, B, n))
    cz = basis.into(c)
    table = plan.coefficients.astype(np.float64)

    special_first_step = np.any(table[:, COLUMNS.index("a_first")] != table[:, COLUMNS.index("a_fixed")])

    def state_at(t):
        z, u = z0, u0
        if t and special_first_step:  # torch's undamped first step, taken on its own
            z, u = _advance(table, multiplier, lam, cz, z, u, 1, first_step=True)
            t -= 1
        return _advance(table, multiplier, lam, cz, z, u, t, first_step=False)

    recorded_at = np.arange(0, plan.steps + 1, plan.every) if plan.record else np.zeros(0, np.int64)
    loss = np.empty((B, recorded_at.size)) if "loss" in plan.record else None
    trajectory = np.empty((B, recorded_at.size, n)) if "trajectory" in plan.record else None
    for r, t in enumerate(recorded_at):
        z, _ = state_at(int(t))
        if loss is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                loss[:, r] = b + np.sum(z * (0.5 * lam * z + cz), axis=1)
        if trajectory is not None:
            trajectory[:, r] = basis.back(z)
    z, u = state_at(plan.steps)
    return basis.back(z), basis.back(u), loss, trajectory, recorded_at


def _start_velocity(plan, B, n):
    return np.zeros((B, n)) if plan.u0.shape[0] == 0 else np.broadcast_to(plan.u0, (B, n)).astype(np.float64)


class _Basis:
    """Rotation into and out of the eigenbasis (none for a diagonal problem)."""

    def __init__(self, rotation):
        self.rotation = rotation

    def into(self, v):
        if self.rotation is None:
            return np.asarray(v, dtype=np.float64)
        return v @ self.rotation if self.rotation.ndim == 2 else np.einsum("bi,bij->bj", v, self.rotation)

    def back(self, v):
        if self.rotation is None:
            return v
        return v @ self.rotation.T if self.rotation.ndim == 2 else np.einsum("bj,bij->bi", v, self.rotation)


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
