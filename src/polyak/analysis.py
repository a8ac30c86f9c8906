"""Theory of momentum on convex quadratics, in closed form.

In the eigenbasis of Q each coordinate evolves on its own; for one eigenvalue λ and a
constant learning rate η (d2l convention; the others trace the same iterates) the state
[vₜ, zₜ] (z = x − x*) is multiplied at every step by a 2×2 matrix whose characteristic
polynomial is

    heavy ball:  μ² − (1 + β − ηλ) μ + β = 0
    nesterov:    μ² − (1 + β)(1 − ηλ) μ + β(1 − ηλ) = 0

and whose spectral radius is the rate at which that coordinate converges (or diverges).
"""

import numpy as np

__all__ = ["spectral_radius"]


def spectral_radius(lr, beta, lam, nesterov=False):
    """max |μ| over the roots of μ² − T μ + D = 0 (see the module docstring), broadcast.

    For complex roots (T² < 4D) both have modulus √D (√β for heavy ball; Distill's "Why
    Momentum Really Works" prints 2√β, which is a typo); for real roots it is
    (|T| + √(T² − 4D)) / 2, which also covers the double root T² = 4D. Gradient descent is
    β = 0: |1 − ηλ|.

    Parameters
    ----------
    lr, beta, lam : float or array_like
        Learning rate η, momentum β, eigenvalue λ; broadcast against each other.
    nesterov : bool
        PyTorch's (equivalently Keras') Nesterov form instead of the heavy ball.
    """
    lr, beta, lam = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (lr, beta, lam)))
    step = lr * lam
    if nesterov:
        trace, det = (1 + beta) * (1 - step), beta * (1 - step)
    else:
        trace, det = 1 + beta - step, beta
    discriminant = trace * trace - 4 * det
    real = 0.5 * (np.abs(trace) + np.sqrt(np.maximum(discriminant, 0.0)))
    complex_ = np.sqrt(np.abs(det))
    radius = np.where(discriminant >= 0, real, complex_)
    return radius[()] if radius.ndim == 0 else radius
