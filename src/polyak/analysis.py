"""Theory of momentum on convex quadratics, in closed form, vectorized with NumPy broadcasting.

In the eigenbasis of Q (Q = O Λ Oᵀ, z = Oᵀ(x − x*)) every coordinate evolves on its own. For
one eigenvalue λ and a constant learning rate η, the d2l convention's state [vₜ, zₜ] is
multiplied at every step by

    M = [[ β,    λ    ],
         [ −ηβ,  1 − ηλ ]]

whose characteristic polynomial is μ² − (1 + β − ηλ) μ + β = 0; Nesterov's (PyTorch's form)
is μ² − (1 + β)(1 − ηλ) μ + β(1 − ηλ) = 0. The spectral radius of M is the rate at which that
coordinate converges (or diverges); the other conventions trace the same iterates with the
velocity scaled by η (MXNet) or by −η (Goodfellow), i.e. similar matrices. In general, with
the canonical update u ← βu + a g, x ← x − k u − e g of :mod:`polyak.rules`, the matrix is
[[β, aλ], [−kβ, 1 − (ka + e)λ]]: trace T = 1 + β − (ka + e)λ, determinant D = β(1 − eλ).
Torch's dampening τ scales the gradient (a = 1 − τ) and so changes the rate; the functions
below take a rule, or (lr, beta) with ``convention=``, ``nesterov=`` and ``dampening=``, and
give the rate of whichever form they describe.

Notes where the textbooks' algebra is wrong, and polyak is right:

- Completing the square: with f(x) = ½xᵀQx + cᵀx + b the minimizer is x* = −Q⁻¹c, so
  f(x) = ½(x + Q⁻¹c)ᵀQ(x + Q⁻¹c) + b − ½cᵀQ⁻¹c (the sign inside the square is +Q⁻¹c).
- Gradient descent in the eigenbasis is zₜ = (I − ηΛ) zₜ₋₁ (no extra terms).
- Distill's "Why Momentum Really Works" prints the rate for complex roots as 2√β; the two
  complex roots have modulus √β (their product is β), and √β is the rate.
"""

import numpy as np
import scipy.linalg

from polyak import _closed_form
from polyak._memory import require_memory
from polyak._validation import as_int, finite_real_array, require_shape
from polyak.execution import execute
from polyak.plans import plan
from polyak.problems import Quadratic, require_symmetric
from polyak.rules import _Rule, as_dampening, canonical_coefficients, check_form, resolve_convention

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


def _floats(**values):
    """The named arguments as float64 arrays, finite, broadcast together (errors name them)."""
    arrays = [np.asarray(finite_real_array(value, name), dtype=np.float64) for name, value in values.items()]
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in zip(values, arrays))
        raise ValueError(f"the arguments must broadcast against each other (NumPy's rules); got {shapes}") from None


def _scalar_or_array(array):
    return array[()] if array.ndim == 0 else array


def eigendecompose(problem):
    """(λ, O) with Q = O diag(λ) Oᵀ, by ``scipy.linalg.eigh``; λ ascending, O orthogonal.

    Shapes follow the problem: λ (n,) or (B, n); O (n, n) or (B, n, n) (for a dense Q shared
    by a batch, one decomposition). A diagonal problem gives its λ and the identity (n, n).
    """
    if not isinstance(problem, Quadratic):
        raise TypeError(f"problem must be a polyak.Quadratic; got {type(problem).__name__}")
    return problem.eigendecompose()


def minimizer(Q, c=None, b=0.0):
    """(x*, f*) with x* = −Q⁻¹c and f* = b − ½cᵀQ⁻¹c, for a symmetric positive definite Q.

    Solved by Cholesky (``scipy.linalg.cho_factor``); a Q that is not positive definite is a
    ValueError, and so is one that is not symmetric (within the tolerance of
    :meth:`polyak.Quadratic.dense`: the Cholesky factorization would read one triangle only,
    and answer for another matrix). `Q` (n, n), `c` (n,) or None (zero), `b` a finite number.
    """
    Q = finite_real_array(Q, "Q")
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1] or Q.shape[0] == 0:
        raise ValueError(f"Q must be a square matrix (n, n) with n >= 1; got shape {Q.shape}")
    require_symmetric(Q, "Q")
    b = require_shape(finite_real_array(b, "b"), [()], "b")
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


def _update(rule, columns=False):
    """(β, a, k, e) of a rule at its constant learning rate; per problem as (B, 1) when `columns`."""
    if not isinstance(rule, _Rule):
        raise TypeError(f"rule must be polyak.GD or polyak.Momentum; got {type(rule).__name__}")
    if rule.schedule is not None:
        raise ValueError("the closed forms need a constant learning rate: the rule has a schedule")
    a, k, e = rule.coefficients()
    beta = np.broadcast_to(rule.beta, a.shape)
    return tuple(v[:, None] if columns and v.ndim else v for v in (beta, a, k, e))


def _form(lr, beta, lam, convention, nesterov, dampening):
    """(β, a, k, e, λ) broadcast, for a rule or for (lr, beta) in a convention."""
    if isinstance(lr, _Rule):
        if lam is not None:
            raise TypeError("with a rule, give the eigenvalues as the second argument: f(rule, lam)")
        if (convention, nesterov, dampening) != ("d2l", False, 0.0):
            raise TypeError("a rule carries its own convention, nesterov and dampening: give them to the rule, "
                            "not as keywords here")
        rule, lam = lr, beta
        beta_, a, k, e = _update(rule)
        lam = np.asarray(finite_real_array(lam, "lam"), dtype=np.float64)
        return np.broadcast_arrays(beta_, a, k, e, lam)
    if lam is None:
        raise TypeError("give lr, beta and lam (or a rule and lam)")
    convention = resolve_convention(convention)
    dampening = as_dampening(dampening)
    check_form(convention, dampening, nesterov)
    lr, beta, lam = _floats(lr=lr, beta=beta, lam=lam)
    a, k, e = canonical_coefficients(convention, lr, beta, nesterov=nesterov, dampening=dampening)
    return np.broadcast_arrays(beta, a, k, e, lam)


def iteration_matrix(rule, lam):
    """The 2×2 matrix of one step, state [v, x − x*] in the rule's convention, stacked over λ.

    d2l: [[β, λ], [−ηβ, 1 − ηλ]]; PyTorch's nesterov: [[β, λ], [−ηβ², 1 − η(1 + β)λ]];
    MXNet (v scaled by η): [[β, ηλ], [−β, 1 − ηλ]]; Goodfellow (v scaled by −η):
    [[β, −ηλ], [β, 1 − ηλ]]; torch with dampening τ: a = 1 − τ multiplies the gradient (from
    the second step on). In general [[β, s·aλ], [−s·kβ, 1 − (ka + e)λ]] with the canonical
    a, k, e and s the velocity's sign. Per-problem hyperparameters (B,) pair with the rows of
    `lam` (B, n). Returns shape lam.shape + (2, 2).
    """
    lam = np.asarray(finite_real_array(lam, "lam"), dtype=np.float64)
    beta, a, k, e = _update(rule, columns=lam.ndim >= 2)
    beta, a, k, e, lam = np.broadcast_arrays(beta, a, k, e, lam)
    s = rule.velocity_sign
    matrix = np.empty(lam.shape + (2, 2))
    matrix[..., 0, 0] = beta
    matrix[..., 0, 1] = s * a * lam
    matrix[..., 1, 0] = -s * k * beta
    matrix[..., 1, 1] = 1 - (k * a + e) * lam
    return matrix


def spectral_radius(lr, beta=None, lam=None, *, convention="d2l", nesterov=False, dampening=0.0):
    """max |μ| over the roots of μ² − T μ + D = 0 (see the module docstring), broadcast.

    For complex roots (T² < 4D) both have modulus √D (√β for heavy ball); for real roots it is
    (|T| + √(T² − 4D)) / 2, which also covers the double root T² = 4D. Gradient descent is
    β = 0: |1 − ηλ|.

    Call it as ``spectral_radius(rule, lam)`` or ``spectral_radius(lr, beta, lam, ...)``.

    Parameters
    ----------
    lr, beta, lam : float or array_like
        Learning rate η, momentum β, eigenvalue λ; broadcast against each other.
    convention, nesterov, dampening
        The form, as for :class:`polyak.Momentum` (with a constant η the conventions give the
        same rate; torch's dampening changes it).
    """
    beta, a, k, e, lam = _form(lr, beta, lam, convention, nesterov, dampening)
    return _scalar_or_array(_closed_form.spectral_radius_of(*_closed_form.trace_and_determinant(beta, a, k, e, lam)))


def converges(lr, beta=None, lam=None, *, convention="d2l", nesterov=False, dampening=0.0):
    """Whether the iteration converges for eigenvalue λ: the region in closed form, broadcast.

    Both roots of μ² − Tμ + D lie inside the unit circle iff |D| < 1 and |T| < 1 + D (the
    Schur–Cohn/Jury conditions). Heavy ball: 0 < ηλ < 2 + 2β with |β| < 1 (gradient descent:
    0 < ηλ < 2); Nesterov: 0 < ηλ < (2 + 2β)/(1 + 2β); torch's dampening τ: ηλ(1 − τ) in
    place of ηλ. Arguments as :func:`spectral_radius`.
    """
    beta, a, k, e, lam = _form(lr, beta, lam, convention, nesterov, dampening)
    trace, det = _closed_form.trace_and_determinant(beta, a, k, e, lam)
    return _scalar_or_array((np.abs(det) < 1) & (np.abs(trace) < 1 + det))


def regime(lr, beta=None, lam=None, *, convention="d2l", nesterov=False, dampening=0.0):
    """The iteration's regime for eigenvalue λ, after Goh's "Why Momentum Really Works".

    "divergent" (spectral radius >= 1), else by the roots of μ² − Tμ + D: "ripples"
    (complex: a decaying spiral), "one-step" (both roots 0, e.g. ηλ = 1 and β = 0),
    "monotonic" (real, the larger in modulus positive), "oscillating" (real, negative).
    Returns a string, or an array of strings. Arguments as :func:`spectral_radius`.
    """
    beta, a, k, e, lam = _form(lr, beta, lam, convention, nesterov, dampening)
    trace, det = _closed_form.trace_and_determinant(beta, a, k, e, lam)
    discriminant = trace * trace - 4 * det
    radius = _closed_form.spectral_radius_of(trace, det)
    names = np.select(
        [radius >= 1, discriminant < 0, radius == 0, trace > 0],
        ["divergent", "ripples", "one-step", "monotonic"],
        default="oscillating",
    )
    return _scalar_or_array(names)


def rate(problem, rule):
    """The worst spectral radius over the problem's spectrum: the rule's asymptotic rate.

    One value per problem ((B,), or a number for a single problem); the rule's convention,
    nesterov and dampening count (torch's τ scales the gradient by 1 − τ); a constant
    learning rate.
    """
    if not isinstance(problem, Quadratic):
        raise TypeError(f"problem must be a polyak.Quadratic; got {type(problem).__name__}")
    lam, _ = problem.eigenbasis()
    beta, a, k, e = _update(rule, columns=True)
    radius = np.max(_closed_form.spectral_radius_of(*_closed_form.trace_and_determinant(beta, a, k, e, lam)), axis=-1)
    return radius if problem.batched or rule.batch_length is not None else float(radius[0])


def optimal_parameters(mu, L, method="heavy_ball"):
    """(lr, beta, rate): the best constant parameters for a spectrum in [μ, L], κ = L/μ.

    - "heavy_ball": η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))², rate (√κ − 1)/(√κ + 1);
    - "gd": η = 2/(μ + L), β = 0, rate (κ − 1)/(κ + 1);
    - "nesterov": η = 1/L, β = (√κ − 1)/(√κ + 1), rate 1 − 1/√κ.

    Computed from √μ, √L and the ratio μ/L, never from κ, μ + L or (√L + √μ)², so the results
    are accurate over the whole float range wherever the learning rate itself is a float (L
    above about 1e-308; a smaller L is a ValueError).
    """
    if not isinstance(method, str) or method not in ("heavy_ball", "gd", "nesterov"):
        raise ValueError(f"method must be 'heavy_ball', 'gd' or 'nesterov'; got {method!r}")
    values = {}
    for name, value in (("mu", mu), ("L", L)):
        value = require_shape(finite_real_array(value, name), [()], name)
        values[name] = float(value)
    mu, L = values["mu"], values["L"]
    if not 0 < mu <= L:
        raise ValueError(f"need 0 < mu <= L; got mu={mu}, L={L}")
    root_mu, root_L = np.float64(mu) ** 0.5, np.float64(L) ** 0.5
    contraction = (root_L - root_mu) / (root_L + root_mu)  # (√κ − 1)/(√κ + 1)
    ratio = mu / L  # 1/κ, which may underflow to 0 harmlessly
    with np.errstate(over="ignore", divide="ignore"):
        parameters = {
            "heavy_ball": ((2 / (root_L + root_mu)) ** 2, contraction**2, contraction),
            "gd": ((2 / np.float64(L)) / (1 + ratio), 0.0, (1 - ratio) / (1 + ratio)),
            "nesterov": (1 / np.float64(L), contraction, 1 - root_mu / root_L),
        }[method]
    if not np.isfinite(parameters[0]):
        raise ValueError(f"L = {L:g} is too small: the optimal learning rate is beyond the float range")
    return tuple(float(value) for value in parameters)


def effective_sample_size(beta):
    """1/(1 − β): how many recent gradients the velocity effectively averages (β in [0, 1))."""
    (beta,) = _floats(beta=beta)
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("beta must be in [0, 1)")
    return _scalar_or_array(1 / (1 - beta))


def effective_weights(beta, t):
    """β^τ for τ = 0..t−1: the weight of the gradient τ steps back in the velocity.

    Shape beta.shape + (t,); a MemoryError up front when that does not fit in memory.
    """
    (beta,) = _floats(beta=beta)
    t = as_int(t, "t", minimum=0)
    require_memory(8.0 * beta.size * t, f"effective_weights with t={t}", ["a smaller t"])
    return beta[..., None] ** np.arange(t)


def terminal_velocity(lr, grad_norm, beta):
    """η‖g‖/(1 − β): the step length under a constant gradient, once the velocity settles."""
    lr, grad_norm, beta = _floats(lr=lr, grad_norm=grad_norm, beta=beta)
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError("beta must be in [0, 1)")
    return _scalar_or_array(lr * grad_norm / (1 - beta))


def exact_iterates(problem, rule, x0, steps, *, v0=None, record=None, every=1):
    """The iterates after `steps` steps in closed form, O(n) per query instead of O(n·steps).

    ``execute(plan(problem, rule, x0, steps, v0=v0, record=record, every=every),
    "closed-form")``: see :mod:`polyak._closed_form` for the method and its accuracy. Needs a
    constant learning rate; any convention; diagonal or dense problems; float64. Where the
    iteration diverges the result overflows to inf or NaN, as a run would. As `run`, the
    torch convention has no velocity before its first step (None for steps = 0).

    Returns
    -------
    Result
        As :func:`polyak.run` returns (x, velocity, and the records asked for).
    """
    if not isinstance(rule, _Rule):
        raise TypeError(f"rule must be polyak.GD or polyak.Momentum; got {type(rule).__name__}")
    if rule.schedule is not None:
        raise ValueError("the closed forms need a constant learning rate: the rule has a schedule")
    job = plan(problem, rule, x0, steps, v0=v0, record=record, every=every, dtype=np.float64)
    return execute(job, "closed-form")
