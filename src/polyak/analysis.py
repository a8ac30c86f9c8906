"""Theory of momentum on convex quadratics, in closed form, vectorized with NumPy broadcasting.

In the eigenbasis of Q (Q = O Λ Oᵀ, z = Oᵀ(x − x*)) every coordinate evolves on its own. For
one eigenvalue λ and a constant learning rate η, the d2l convention's state [vₜ, zₜ] is
multiplied at every step by

    M = [[ β,    λ    ],
         [ −ηβ,  1 − ηλ ]]

whose characteristic polynomial is μ² − (1 + β − ηλ) μ + β = 0; Nesterov's (PyTorch's form)
is μ² − (1 + β)(1 − ηλ) μ + β(1 − ηλ) = 0. The spectral radius of M is the rate at which that
coordinate converges (or diverges); the other conventions trace the same iterates with the
velocity scaled by η (MXNet) or by −η (Goodfellow), i.e. similar matrices.

Notes where the textbooks' algebra is wrong, and polyak is right:

- Completing the square: with f(x) = ½xᵀQx + cᵀx + b the minimizer is x* = −Q⁻¹c, so
  f(x) = ½(x + Q⁻¹c)ᵀQ(x + Q⁻¹c) + b − ½cᵀQ⁻¹c (the sign inside the square is +Q⁻¹c).
- Gradient descent in the eigenbasis is zₜ = (I − ηΛ) zₜ₋₁ (no extra terms).
- Distill's "Why Momentum Really Works" prints the rate for complex roots as 2√β; the two
  complex roots have modulus √β (their product is β), and √β is the rate.
"""

from typing import NamedTuple

import numpy as np
import scipy.linalg

from polyak._validation import as_int, finite_real_array
from polyak.problems import Quadratic
from polyak.rules import GD, _Rule

__all__ = [
    "converges",
    "effective_sample_size",
    "effective_weights",
    "eigendecompose",
    "exact_iterates",
    "iteration_matrix",
    "minimizer",
    "optimal_parameters",
    "rate",
    "regime",
    "spectral_radius",
    "terminal_velocity",
]

REGIMES = ("monotonic", "ripples", "oscillating", "one-step", "divergent")


def _floats(*values):
    return np.broadcast_arrays(*(np.asarray(finite_real_array(v, "argument"), dtype=np.float64) for v in values))


def _scalar_or_array(array):
    return array[()] if array.ndim == 0 else array


def eigendecompose(problem):
    """(λ, O) with Q = O diag(λ) Oᵀ, by ``scipy.linalg.eigh``; λ ascending, O orthogonal.

    Shapes follow the problem: λ (n,) or (B, n); O (n, n) or (B, n, n) (for a dense Q shared
    by a batch, one decomposition). A diagonal problem gives its λ and the identity (n, n).
    """
    if not isinstance(problem, Quadratic):
        raise TypeError(f"problem must be a polyak.Quadratic; got {type(problem).__name__}")
    if problem.kind == "diagonal":
        lam = problem.lam if problem.batched else problem.lam[0]
        return lam.copy(), np.eye(problem.dim, dtype=problem.dtype)
    Q = problem.Q
    if Q.ndim == 2:
        return scipy.linalg.eigh(Q)
    pairs = [scipy.linalg.eigh(q) for q in Q]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def minimizer(Q, c=None, b=0.0):
    """(x*, f*) with x* = −Q⁻¹c and f* = b − ½cᵀQ⁻¹c, for a symmetric positive definite Q.

    Solved by Cholesky (``scipy.linalg.cho_factor``); a Q that is not positive definite is a
    ValueError. `Q` (n, n), `c` (n,) or None (zero), `b` a number.
    """
    Q = finite_real_array(Q, "Q")
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1]:
        raise ValueError(f"Q must be a square matrix (n, n); got shape {Q.shape}")
    c = np.zeros(Q.shape[0]) if c is None else finite_real_array(c, "c")
    if c.shape != (Q.shape[0],):
        raise ValueError(f"c must have shape ({Q.shape[0]},); got {c.shape}")
    try:
        factor = scipy.linalg.cho_factor(Q)
    except np.linalg.LinAlgError as error:
        smallest = scipy.linalg.eigvalsh(Q)[0]
        raise ValueError(f"Q must be positive definite for a minimizer; its smallest eigenvalue is {smallest:.6g}") from error
    x = -scipy.linalg.cho_solve(factor, c)
    return x, float(b) + 0.5 * float(c @ x)


class _Canonical(NamedTuple):
    # the canonical update's constants (polyak.rules.KernelRule), for a constant lr:
    # u = β u + a g;  x = x − k u − e g;  `first_a`: a on the first step (torch's b₁ = g₁)
    beta: np.ndarray
    a: np.ndarray
    k: np.ndarray
    e: np.ndarray
    first_a: np.ndarray
    velocity_sign: float


def _canonical(rule, columns):
    """The rule's constants, per problem as (B, 1) when `columns`, for a constant learning rate."""
    if not isinstance(rule, _Rule):
        raise TypeError(f"rule must be polyak.GD or polyak.Momentum; got {type(rule).__name__}")
    if rule.schedule is not None:
        raise ValueError("the closed forms need a constant learning rate: the rule has a schedule")
    lr, beta = rule.lr, rule.beta
    if columns:
        lr, beta = (v[:, None] if v.ndim else v for v in (lr, beta))
    if rule.lr_inside_velocity:
        a, k = lr, (beta if rule.nesterov else np.ones_like(lr))
    else:
        a = np.full_like(lr, 1.0 - rule.dampening)
        k = beta * lr if rule.nesterov else lr
    e = lr if rule.nesterov else np.zeros_like(lr)
    first_a = np.ones_like(lr) if rule.undamped_first_step else a
    return _Canonical(beta, a, k, e, first_a, rule.velocity_sign)


def _trace_det(canonical, lam, a=None):
    # M = [[β, aλ], [−kβ, 1 − (ka + e)λ]] (state [u, z]): its trace and determinant
    a = canonical.a if a is None else a
    beta, k, e = canonical.beta, canonical.k, canonical.e
    return beta + 1 - (k * a + e) * lam, beta * (1 - e * lam)


def iteration_matrix(rule, lam):
    """The 2×2 matrix of one step, state [v, x − x*] in the rule's convention, stacked over λ.

    d2l: [[β, λ], [−ηβ, 1 − ηλ]]; PyTorch's nesterov: [[β, λ], [−ηβ², 1 − η(1 + β)λ]];
    MXNet (v scaled by η): [[β, ηλ], [−β, 1 − ηλ]]; Goodfellow (v scaled by −η):
    [[β, −ηλ], [β, 1 − ηλ]]; torch with dampening τ: a = 1 − τ multiplies the gradient (from
    the second step on). Per-problem hyperparameters (B,) pair with the rows of `lam` (B, n).
    Returns shape lam.shape + (2, 2).
    """
    lam = np.asarray(finite_real_array(lam, "lam"), dtype=np.float64)
    canonical = _canonical(rule, columns=lam.ndim >= 2)
    s = canonical.velocity_sign
    beta, a, k, e = np.broadcast_arrays(canonical.beta, canonical.a, canonical.k, canonical.e, lam)[:4]
    lam = np.broadcast_to(lam, beta.shape)
    matrix = np.empty(lam.shape + (2, 2))
    matrix[..., 0, 0] = beta
    matrix[..., 0, 1] = s * a * lam
    matrix[..., 1, 0] = -s * k * beta
    matrix[..., 1, 1] = 1 - (k * a + e) * lam
    return matrix


def spectral_radius(lr, beta, lam, nesterov=False):
    """max |μ| over the roots of μ² − T μ + D = 0 (see the module docstring), broadcast.

    For complex roots (T² < 4D) both have modulus √D (√β for heavy ball); for real roots it is
    (|T| + √(T² − 4D)) / 2, which also covers the double root T² = 4D. Gradient descent is
    β = 0: |1 − ηλ|.

    Parameters
    ----------
    lr, beta, lam : float or array_like
        Learning rate η, momentum β, eigenvalue λ; broadcast against each other.
    nesterov : bool
        PyTorch's (equivalently Keras') Nesterov form instead of the heavy ball.
    """
    lr, beta, lam = _floats(lr, beta, lam)
    canonical = _Canonical(beta, 1.0, lr * beta if nesterov else lr, lr if nesterov else 0.0, 1.0, 1.0)
    return _scalar_or_array(_radius(*_trace_det(canonical, lam)))


def _radius(trace, det):
    discriminant = trace * trace - 4 * det
    real = 0.5 * (np.abs(trace) + np.sqrt(np.maximum(discriminant, 0.0)))
    return np.where(discriminant >= 0, real, np.sqrt(np.abs(det)))


def converges(lr, beta, lam, nesterov=False):
    """Whether the iteration converges for eigenvalue λ: the region in closed form, broadcast.

    Heavy ball: |β| < 1 and 0 < ηλ < 2 + 2β (gradient descent, β = 0: 0 < ηλ < 2).
    Nesterov: |β| < 1 and 0 < ηλ < (2 + 2β)/(1 + 2β).
    """
    lr, beta, lam = _floats(lr, beta, lam)
    step = lr * lam
    limit = (2 + 2 * beta) / (1 + 2 * beta) if nesterov else 2 + 2 * beta
    return _scalar_or_array((np.abs(beta) < 1) & (step > 0) & (step < limit))


def regime(lr, beta, lam):
    """The heavy ball's regime for eigenvalue λ, after Goh's "Why Momentum Really Works".

    "divergent" (spectral radius >= 1), else by the roots of μ² − (1 + β − ηλ)μ + β:
    "ripples" (complex: a decaying spiral), "one-step" (both roots 0: ηλ = 1 and β = 0),
    "monotonic" (real, the larger in modulus positive), "oscillating" (real, negative).
    Returns a string, or an array of strings.
    """
    lr, beta, lam = _floats(lr, beta, lam)
    trace, det = 1 + beta - lr * lam, beta
    discriminant = trace * trace - 4 * det
    radius = _radius(trace, det)
    names = np.select(
        [radius >= 1, discriminant < 0, radius == 0, trace > 0],
        ["divergent", "ripples", "one-step", "monotonic"],
        default="oscillating",
    )
    return _scalar_or_array(names)


def rate(problem, rule):
    """The worst spectral radius over the problem's spectrum: the rule's asymptotic rate.

    One value per problem ((B,), or a number for a single problem); the rule's convention and
    dampening count (torch's τ scales the gradient by 1 − τ); a constant learning rate.
    """
    lam, _ = eigendecompose(problem) if problem.kind == "dense" else (problem.lam, None)
    lam = np.atleast_2d(lam)
    canonical = _canonical(rule, columns=True)
    radius = np.max(_radius(*_trace_det(canonical, lam)), axis=-1)
    return radius if problem.batched or rule.batch_length is not None else float(radius[0])


def optimal_parameters(mu, L, method="heavy_ball"):
    """(lr, beta, rate): the best constant parameters for a spectrum in [μ, L], κ = L/μ.

    - "heavy_ball": η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))², rate (√κ − 1)/(√κ + 1);
    - "gd": η = 2/(μ + L), β = 0, rate (κ − 1)/(κ + 1);
    - "nesterov": η = 1/L, β = (√κ − 1)/(√κ + 1), rate 1 − 1/√κ.
    """
    mu, L = (float(finite_real_array(v, name)) for v, name in ((mu, "mu"), (L, "L")))
    if not 0 < mu <= L:
        raise ValueError(f"need 0 < mu <= L; got mu={mu}, L={L}")
    kappa = L / mu
    root = np.sqrt(kappa)
    if method == "heavy_ball":
        return 4 / (np.sqrt(L) + np.sqrt(mu)) ** 2, ((root - 1) / (root + 1)) ** 2, (root - 1) / (root + 1)
    if method == "gd":
        return 2 / (mu + L), 0.0, (kappa - 1) / (kappa + 1)
    if method == "nesterov":
        return 1 / L, (root - 1) / (root + 1), 1 - 1 / root
    raise ValueError(f"method must be 'heavy_ball', 'gd' or 'nesterov'; got {method!r}")


def effective_sample_size(beta):
    """1/(1 − β): how many recent gradients the velocity effectively averages (β in [0, 1))."""
    (beta,) = _floats(beta)
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("beta must be in [0, 1)")
    return _scalar_or_array(1 / (1 - beta))


def effective_weights(beta, t):
    """β^τ for τ = 0..t−1: the weight of the gradient τ steps back in the velocity."""
    (beta,) = _floats(beta)
    t = as_int(t, "t", minimum=0)
    return beta[..., None] ** np.arange(t)


def terminal_velocity(lr, grad_norm, beta):
    """η‖g‖/(1 − β): the step length under a constant gradient, once the velocity settles."""
    lr, grad_norm, beta = _floats(lr, grad_norm, beta)
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("beta must be in [0, 1)")
    return _scalar_or_array(lr * grad_norm / (1 - beta))


class ExactIterate(NamedTuple):
    """The state after `steps` steps: x and the velocity in the rule's convention (None for GD)."""

    x: np.ndarray
    velocity: np.ndarray


def exact_iterates(problem, rule, x0, steps, v0=None):
    """The iterate after `steps` steps in closed form, in O(n) per query instead of O(n·steps).

    In the eigenbasis each coordinate's state (u, z − z*) is multiplied by the 2×2 matrix M of
    the canonical update per step; Mᵀ comes from Cayley–Hamilton in Lagrange form,
    Mᵀ = d_T M − det(M) d_{T−1} I with d_T = (μ₁ᵀ − μ₂ᵀ)/(μ₁ − μ₂), evaluated as
    μ₂ᵀ⁻¹ · expm1(T·log1p(δ))/δ with δ = μ₁/μ₂ − 1 (|μ₂| >= |μ₁|), which is exact at a double
    root (d_T = T μᵀ⁻¹) and stable near one. Coordinates with λ = 0 (a constant gradient) use
    the geometric sums. Torch's undamped first step is taken explicitly. Needs a constant
    learning rate; any convention; diagonal or dense problems. Where the iteration diverges
    the result overflows to inf or NaN, as a run would. Accuracy: a coordinate with
    0 < |λ| ≪ 1 and c ≠ 0 is shifted by its minimizer −c/λ, which costs about ε·|c/λ| of
    absolute accuracy (e.g. 1e-4 for λ = 1e-12, c = 1); λ exactly 0 is exact. As `run`, the
    torch convention has no velocity before its first step (None for steps = 0).
    """
    if not isinstance(problem, Quadratic):
        raise TypeError(f"problem must be a polyak.Quadratic; got {type(problem).__name__}")
    steps = steps_asked = as_int(steps, "steps", minimum=0)
    canonical = _canonical(rule, columns=True)
    if problem.kind == "diagonal":
        lam, rotation = problem.lam, None  # already the eigenbasis
    else:
        lam, rotation = eigendecompose(problem)
        # eigh returns ±1e-16·max|λ| for a zero eigenvalue: count that noise as 0, or the
        # shift by −c/λ would cancel catastrophically
        noise = 64 * np.finfo(np.float64).eps * np.max(np.abs(lam), axis=-1, keepdims=True)
        lam = np.where(np.abs(lam) <= noise, 0.0, lam)
    lam = np.atleast_2d(lam)
    B = max(problem.batch_size, rule.batch_length or 1)
    n = problem.dim
    x0 = np.broadcast_to(np.asarray(finite_real_array(x0, "x0"), dtype=np.float64), (B, n))
    u0 = np.zeros((B, n)) if v0 is None else canonical.velocity_sign * np.broadcast_to(
        np.asarray(finite_real_array(v0, "v0"), dtype=np.float64), (B, n))
    c = np.broadcast_to(problem.c.astype(np.float64), (B, n))

    def to_eigenbasis(v):
        if rotation is None:
            return v
        return v @ rotation if rotation.ndim == 2 else np.einsum("bi,bij->bj", v, rotation)

    def from_eigenbasis(v):
        if rotation is None:
            return v
        return v @ rotation.T if rotation.ndim == 2 else np.einsum("bj,bij->bi", v, rotation)

    z, u, cz = to_eigenbasis(x0), to_eigenbasis(u0), to_eigenbasis(c)
    lam = np.broadcast_to(lam, (B, n))
    if steps and v0 is None and np.any(canonical.first_a != canonical.a):
        z, u = _advance_closed_form(canonical, lam, cz, z, u, 1, a=canonical.first_a)
        steps -= 1
    z, u = _advance_closed_form(canonical, lam, cz, z, u, steps)
    x, velocity = from_eigenbasis(z), canonical.velocity_sign * from_eigenbasis(u)
    if not (problem.batched or rule.batch_length is not None):
        x, velocity = x[0], velocity[0]
    no_buffer = rule.undamped_first_step and v0 is None and steps_asked == 0
    return ExactIterate(x, None if isinstance(rule, GD) or no_buffer else velocity)


@np.errstate(over="ignore", invalid="ignore")  # a diverging iteration overflows: a result
def _advance_closed_form(canonical, lam, c, z, u, steps, a=None):
    """`steps` steps of the canonical update on each eigen-coordinate, in closed form."""
    a = canonical.a if a is None else a
    beta, k, e = (np.broadcast_to(v, lam.shape) for v in (canonical.beta, canonical.k, canonical.e))
    a = np.broadcast_to(a, lam.shape)
    if steps == 0:
        return z.copy(), u.copy()
    curved = lam != 0
    safe_lam = np.where(curved, lam, 1.0)
    z_star = np.where(curved, -c / safe_lam, 0.0)
    w = z - z_star  # the gradient is λ w: a linear recurrence in (u, w)
    trace, det = _trace_det(_Canonical(beta, a, k, e, a, 1.0), lam)
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
