"""Quadratic problems f(x) = ½ xᵀQx + cᵀx + b, one or a batch of them."""

import numpy as np

from polyak._validation import finite_real_array, read_only, require_shape

__all__ = ["Quadratic", "ill_conditioned_2d"]


class Quadratic:
    """A batch of B quadratics of dimension n: f(x) = ½ xᵀQx + cᵀx + b.

    Build one with :meth:`Quadratic.diagonal`. The arrays are stored read-only, as float32
    when given as float32 and as float64 otherwise.

    Attributes
    ----------
    lam : ndarray, shape (B, n)
        The spectrum: Q = diag(lam) for each problem.
    c : ndarray, shape (B, n)
        The linear term (zeros when none was given).
    b : ndarray, shape (B,)
        The constant term.
    batched : bool
        False for a single problem: methods then take and return unbatched arrays.
    batch_size, dim : int
        B and n.
    """

    def __init__(self, lam, c, b, batched):
        self.lam = read_only(lam)
        self.c = read_only(c)
        self.b = read_only(b)
        self.batched = batched

    @classmethod
    def diagonal(cls, lam, c=None, b=0.0):
        """Diagonal quadratics f(x) = ½ Σᵢ λᵢxᵢ² + cᵀx + b.

        Parameters
        ----------
        lam : array_like, shape (n,) or (B, n)
            The eigenvalues λ: one problem, or a batch of B. Any finite reals (a negative λ
            makes the problem unbounded below; `run` still runs it).
        c : array_like, same shape as `lam`, optional
            The linear term; zero when omitted.
        b : float or array_like of shape (B,), optional
            The constant term.

        The problem is float32 when `lam` (and `c`, if given) are float32, else float64.
        """
        lam = finite_real_array(lam, "lam")
        if lam.ndim not in (1, 2) or lam.shape[-1] == 0 or lam.shape[0] == 0:
            raise ValueError(f"lam must have shape (n,) or (B, n) with n, B >= 1; got {lam.shape}")
        batched = lam.ndim == 2
        dtype = lam.dtype
        if c is None:
            c = np.zeros(lam.shape, dtype)
        else:
            c = require_shape(finite_real_array(c, "c"), [lam.shape], "c (the shape of lam)")
            dtype = np.promote_types(dtype, c.dtype)
        b = finite_real_array(b, "b")
        batch = lam.shape[0] if batched else 1
        allowed = [(), (batch,)] if batched else [()]
        require_shape(b, allowed, "b")
        lam2 = np.array(np.atleast_2d(lam), dtype=dtype, order="C")
        c2 = np.array(np.atleast_2d(c), dtype=dtype, order="C")
        b1 = np.array(np.broadcast_to(b, (batch,)), dtype=dtype)
        return cls(lam2, c2, b1, batched)

    @property
    def batch_size(self):
        """B, the number of problems (1 for a single problem)."""
        return self.lam.shape[0]

    @property
    def dim(self):
        """n, the dimension of x."""
        return self.lam.shape[1]

    @property
    def dtype(self):
        return self.lam.dtype

    def __repr__(self):
        kind = f"batch of {self.batch_size}" if self.batched else "single problem"
        return f"Quadratic.diagonal({kind}, dim={self.dim}, dtype={self.dtype})"

    def _points(self, x):
        # x as (B, n) or (..., n) points, checked against the batch; returns (points, unbatch)
        x = finite_real_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension n = {self.dim}; got shape {x.shape}")
        if self.batched:
            require_shape(x, [(self.dim,), (self.batch_size, self.dim)], "x (for a batch)")
            return np.broadcast_to(x, self.lam.shape), False
        return x, True

    def _coefficients(self, unbatched):
        if unbatched:
            return self.lam[0], self.c[0], self.b[0]
        return self.lam, self.c, self.b

    def value(self, x):
        """f(x) = ½ Σᵢ λᵢxᵢ² + Σᵢ cᵢxᵢ + b.

        `x` has shape (n,) or, for a batch, (B, n); a single problem also takes any
        (..., n) stack of points. Returns one value per problem (or point).
        """
        points, unbatched = self._points(x)
        lam, c, b = self._coefficients(unbatched)
        return np.sum(points * (0.5 * lam * points + c), axis=-1) + b

    def grad(self, x):
        """∇f(x) = λ ⊙ x + c, with the shape rules of :meth:`value`."""
        points, unbatched = self._points(x)
        lam, c, _ = self._coefficients(unbatched)
        return lam * points + c

    def minimizer(self):
        """x* = −c / λ, the unique minimizer; needs every λ > 0 (strict convexity)."""
        if not np.all(self.lam > 0):
            p, i = (int(k) for k in np.argwhere(~(self.lam > 0))[0])
            raise ValueError(
                "minimizer() needs every eigenvalue λ > 0 (a strictly convex problem); "
                f"got λ = {self.lam[p, i]} at problem {p}, coordinate {i}"
            )
        x = -self.c / self.lam
        return x if self.batched else x[0]

    def min_value(self):
        """f(x*) = b − ½ Σᵢ cᵢ²/λᵢ; needs every λ > 0."""
        x = np.atleast_2d(self.minimizer())
        value = self.b + 0.5 * np.sum(self.c * x, axis=-1)
        return value if self.batched else value[0]


def ill_conditioned_2d():
    """The textbook's f(x) = 0.1x₁² + 2x₂²: λ = (0.2, 4.0), condition number 20."""
    return Quadratic.diagonal(np.array([0.2, 4.0]))
