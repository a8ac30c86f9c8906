"""Quadratic problems f(x) = ½ xᵀQx + cᵀx + b, one or a batch of them, diagonal or dense."""

from decimal import Decimal

import numpy as np
import scipy.linalg

from polyak._validation import finite_real_array, read_only, require_shape

__all__ = ["Quadratic", "DiagonalQuadratic", "DenseQuadratic", "ill_conditioned_2d", "SYMMETRY_TOLERANCE",
           "require_symmetric", "symmetrized"]

#: How far from symmetric a dense Q may be, relative to max |Q|, per dtype.
SYMMETRY_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def symmetrized(Q):
    """(Q + Qᵀ)/2 over the last two axes, as Q/2 + Qᵀ/2: no overflow for entries near the
    largest float (a subnormal entry may lose its last bit)."""
    half = 0.5 * Q
    return half + np.swapaxes(half, -1, -2)


def require_symmetric(Q, name):
    """ValueError unless Q (…, n, n) is symmetric within SYMMETRY_TOLERANCE of max |Q|."""
    half_asymmetry = float(np.max(np.abs(0.5 * Q - 0.5 * np.swapaxes(Q, -1, -2)), initial=0.0))
    scale = float(np.max(np.abs(Q), initial=0.0))
    tolerance = SYMMETRY_TOLERANCE[np.dtype(np.float32) if Q.dtype == np.float32 else np.dtype(np.float64)]
    if half_asymmetry > 0.5 * tolerance * scale:
        asymmetry = 2 * half_asymmetry
        # 2·half may be beyond the float range: then Decimal's notation
        shown = f"{asymmetry:.3g}" if np.isfinite(asymmetry) else f"{2 * Decimal(half_asymmetry):.3G}"
        raise ValueError(
            f"{name} must be symmetric: max |{name} - {name}ᵀ| = {shown}, which is "
            f"{half_asymmetry / scale * 2:.3g} of max |{name}|; allowed: {tolerance:g} of max |{name}| "
            f"(symmetrize it with ({name} + {name}.T) / 2)"
        )


def _restore(cls, fields):
    # construction, unpickling and copying: the arrays (again) read-only, their shapes checked
    problem = object.__new__(cls)
    problem._set(**fields)
    problem.check()
    return problem


class Quadratic:
    """A batch of B quadratics of dimension n: f(x) = ½ xᵀQx + cᵀx + b.

    Build one with :meth:`Quadratic.diagonal` (a :class:`DiagonalQuadratic`) or
    :meth:`Quadratic.dense` (a :class:`DenseQuadratic`). Immutable: the arrays are stored
    read-only, as float32 when given as float32 and as float64 otherwise. Picklable.

    Attributes
    ----------
    kind : "diagonal" or "dense"
    lam : ndarray, shape (B, n)
        Diagonal problems: the spectrum, Q = diag(lam). None for dense ones.
    Q : ndarray, shape (n, n) (shared by the batch) or (B, n, n)
        Dense problems: the symmetric matrix. None for diagonal ones.
    c : ndarray, shape (B, n)
        The linear term (zeros when none was given).
    b : ndarray, shape (B,)
        The constant term.
    batched : bool
        False for a single problem: methods then take and return unbatched arrays.
    batch_size, dim : int
        B and n.
    """

    kind = None
    lam = None
    Q = None
    recordable = ("loss", "trajectory")
    max_steps = None
    _fields = ("c", "b", "batched")

    def _set(self, **fields):
        for name, value in fields.items():
            object.__setattr__(self, name, read_only(value) if isinstance(value, np.ndarray) else value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; make a new one")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable; make a new one")

    def __reduce__(self):
        return _restore, (type(self), {name: getattr(self, name) for name in self._fields})

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
        c, b, dtype = _linear_and_constant(c, b, lam.dtype, batch=lam.shape[0] if batched else None,
                                           n=lam.shape[-1], c_name="c (the shape of lam)")
        lam2 = np.array(np.atleast_2d(lam), dtype=dtype, order="C")
        return _restore(DiagonalQuadratic, dict(lam=lam2, c=c, b=b, batched=batched))

    @classmethod
    def dense(cls, Q, c=None, b=0.0):
        """Quadratics f(x) = ½ xᵀQx + cᵀx + b with a dense symmetric Q.

        Parameters
        ----------
        Q : array_like, shape (n, n) or (B, n, n)
            One matrix shared by the whole batch, or one per problem. Square, finite and
            symmetric within SYMMETRY_TOLERANCE (1e-10 of max |Q| for float64, 1e-5 for
            float32); it is stored symmetrized, (Q + Qᵀ)/2. Indefinite Q is allowed (`run`
            may diverge, which it reports); `minimizer` needs Q positive definite.
        c : array_like, shape (n,) or (B, n), optional
            The linear term; zero when omitted. With a shared Q, c of shape (B, n) makes a
            batch of B problems.
        b : float or array_like of shape (B,), optional
            The constant term.
        """
        Q = finite_real_array(Q, "Q")
        if Q.ndim not in (2, 3) or Q.shape[-1] != Q.shape[-2] or Q.shape[-1] == 0 or Q.shape[0] == 0:
            raise ValueError(f"Q must be square: shape (n, n) or (B, n, n) with n, B >= 1; got {Q.shape}")
        n = Q.shape[-1]
        require_symmetric(Q, "Q")
        if Q.ndim == 3:
            batch = Q.shape[0]
        else:
            c_shape, b_shape = np.shape(c) if c is not None else (), np.shape(b)
            batch = c_shape[0] if len(c_shape) == 2 else (b_shape[0] if len(b_shape) == 1 else None)
        c, b, dtype = _linear_and_constant(c, b, Q.dtype, batch=batch, n=n, c_shared=True)
        Q = np.array(symmetrized(Q), dtype=dtype, order="C")
        return _restore(DenseQuadratic, dict(Q=Q, c=c, b=b, batched=batch is not None))

    @property
    def batch_size(self):
        """B, the number of problems (1 for a single problem)."""
        return self.c.shape[0]

    @property
    def dim(self):
        """n, the dimension of x."""
        return self.c.shape[1]

    @property
    def dtype(self):
        return self.c.dtype

    @property
    def shared(self):
        """True when every problem of the batch has the same Q (a dense Q of shape (n, n))."""
        return False

    @property
    def plan_kind(self):
        """The kind of the plans that run this problem: "diagonal", "dense" or "dense-shared"."""
        return self.kind + ("-shared" if self.shared else "")

    def operands(self):
        """The arrays a plan computes with, by name."""
        return {name: getattr(self, name) for name in self._fields if name != "batched"}

    def record_steps(self, steps, every):
        """The steps after which a run of `steps` steps records: 0, every, 2·every, …"""
        return np.arange(0, steps + 1, every, dtype=np.int64)

    def check(self):
        """ValueError unless the arrays fit together: c (B, n) and b (B,) of one float dtype,
        with lam (B, n) or Q (n, n) or (B, n, n)."""
        B, n = self.c.shape if self.c.ndim == 2 else (0, 0)
        arrays = self.operands().values()
        fits = (B >= 1 and n >= 1 and self.b.shape == (B,) and self._fits(B, n)
                and all(a.dtype == self.c.dtype for a in arrays) and np.issubdtype(self.c.dtype, np.floating)
                and (self.batched or B == 1))
        if not fits:
            shapes = ", ".join(f"{name} {a.shape} {a.dtype}" for name, a in self.operands().items())
            raise ValueError(f"a Quadratic.{self.kind}'s arrays do not fit together: {shapes}")

    def _fits(self, B, n):
        raise NotImplementedError

    def __repr__(self):
        kind = f"batch of {self.batch_size}" if self.batched else "single problem"
        shared = ", Q shared" if self.shared and self.batched else ""
        return f"Quadratic.{self.kind}({kind}{shared}, dim={self.dim}, dtype={self.dtype})"

    def rows(self, start, stop):
        """Problems start..stop−1 of the batch, as a batch (views of this problem's arrays)."""
        raise NotImplementedError

    def take(self, index, dtype=None):
        """The batch whose problem p is problem index[p] of this one (copies, in `dtype`)."""
        raise NotImplementedError

    def curvature(self, points):
        """Q x for each of a (B, n) stack of points, problem p's Q for row p."""
        raise NotImplementedError

    def _single_curvature(self, points):
        # Q x for any (..., n) stack of points of a single problem
        raise NotImplementedError

    def eigendecompose(self):
        """(λ, O) with Q = O diag(λ) Oᵀ; see :func:`polyak.analysis.eigendecompose`."""
        lam, rotation = self.eigenbasis()
        lam = lam[0] if self.shared or not self.batched else lam
        return lam.copy(), np.eye(self.dim, dtype=self.dtype) if rotation is None else rotation

    def eigenbasis(self):
        """(λ of shape (P, n) or (1, n) when Q is shared, O or None when Q is diagonal already)."""
        raise NotImplementedError

    def spectrum_bounds(self):
        """(smallest, largest) eigenvalue of each problem's Q, two arrays (P,) (float64)."""
        raise NotImplementedError

    def _points(self, x):
        # x as (B, n) or (..., n) points, checked against the batch; returns (points, unbatched)
        x = finite_real_array(x, "x")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension n = {self.dim}; got shape {x.shape}")
        if self.batched:
            require_shape(x, [(self.dim,), (self.batch_size, self.dim)], "x (for a batch)")
            return np.broadcast_to(x, self.c.shape), False
        return x, True

    def _curvature_of(self, points, unbatched):
        # Q x, for the batch's points (B, n) or for any stack (..., n) of a single problem's
        return self._single_curvature(points) if unbatched else self.curvature(points)

    def value(self, x):
        """f(x) = ½ xᵀQx + cᵀx + b.

        `x` has shape (n,) or, for a batch, (B, n); a single problem also takes any (..., n)
        stack of points. Returns one value per problem (or point).
        """
        points, unbatched = self._points(x)
        c, b = (self.c[0], self.b[0]) if unbatched else (self.c, self.b)
        return np.sum(points * (0.5 * self._curvature_of(points, unbatched) + c), axis=-1) + b

    def grad(self, x):
        """∇f(x) = Qx + c, with the shape rules of :meth:`value`."""
        points, unbatched = self._points(x)
        return self._curvature_of(points, unbatched) + (self.c[0] if unbatched else self.c)

    def minimizer(self):
        """x* = −Q⁻¹c, the unique minimizer; needs Q positive definite (every λ > 0)."""
        raise NotImplementedError

    def min_value(self):
        """f(x*) = b − ½ cᵀQ⁻¹c; needs Q positive definite."""
        x = np.atleast_2d(self.minimizer())
        value = self.b + 0.5 * np.sum(self.c * x, axis=-1)
        return value if self.batched else value[0]

    def diagonalize(self):
        """(diagonal, O): the problem in the eigenbasis of Q, and the rotation to get back.

        With Q = O diag(λ) Oᵀ (``scipy.linalg.eigh``) and z = Oᵀx, f(x) = ½ Σ λᵢzᵢ² + (Oᵀc)ᵀz + b,
        so the returned diagonal problem has λ and c' = Oᵀc. Every update rule is linear and
        commutes with the rotation: running it on this problem from Oᵀx₀ and rotating back,
        x = O z, gives the run on the dense problem. O has shape (n, n) ((B, n, n) for
        per-problem Q); a diagonal problem returns itself and the identity.
        """
        raise NotImplementedError


class DiagonalQuadratic(Quadratic):
    """Quadratics with Q = diag(λ): see :meth:`Quadratic.diagonal`."""

    kind = "diagonal"
    _fields = ("lam", "c", "b", "batched")

    def _fits(self, B, n):
        return self.lam.shape == (B, n)

    def rows(self, start, stop):
        return _restore(DiagonalQuadratic, dict(lam=self.lam[start:stop], c=self.c[start:stop],
                                                b=self.b[start:stop], batched=True))

    def take(self, index, dtype=None):
        dtype = self.dtype if dtype is None else dtype
        return _restore(DiagonalQuadratic, dict(lam=self.lam.astype(dtype)[index], c=self.c.astype(dtype)[index],
                                                b=self.b.astype(dtype)[index], batched=True))

    def curvature(self, points):
        return self.lam * points

    def _single_curvature(self, points):
        return self.lam[0] * points

    def eigenbasis(self):
        return self.lam, None

    def spectrum_bounds(self):
        lam = self.lam.astype(np.float64)
        return lam.min(axis=1), lam.max(axis=1)

    def minimizer(self):
        """x* = −c/λ; needs every eigenvalue λ > 0 (the error names the first that is not)."""
        if not np.all(self.lam > 0):
            p, i = (int(k) for k in np.argwhere(~(self.lam > 0))[0])
            raise ValueError(
                "minimizer() needs every eigenvalue λ > 0 (a strictly convex problem); "
                f"got λ = {self.lam[p, i]} at problem {p}, coordinate {i}"
            )
        x = -self.c / self.lam
        return x if self.batched else x[0]

    def diagonalize(self):
        return self, np.eye(self.dim, dtype=self.dtype)


class DenseQuadratic(Quadratic):
    """Quadratics with a dense symmetric Q: see :meth:`Quadratic.dense`."""

    kind = "dense"
    _fields = ("Q", "c", "b", "batched")

    def _fits(self, B, n):
        return self.Q.shape in ((n, n), (B, n, n))

    @property
    def shared(self):
        return self.Q.ndim == 2

    def rows(self, start, stop):
        Q = self.Q if self.shared else self.Q[start:stop]
        return _restore(DenseQuadratic, dict(Q=Q, c=self.c[start:stop], b=self.b[start:stop], batched=True))

    def take(self, index, dtype=None):
        dtype = self.dtype if dtype is None else dtype
        Q = self.Q.astype(dtype) if self.shared else self.Q.astype(dtype)[index]
        return _restore(DenseQuadratic, dict(Q=Q, c=self.c.astype(dtype)[index], b=self.b.astype(dtype)[index],
                                             batched=True))

    def curvature(self, points):
        if self.shared:
            return points @ self.Q  # Q is symmetric: x Q = (Q x)ᵀ row by row
        return np.einsum("bij,bj->bi", self.Q, points)

    def _single_curvature(self, points):
        return points @ self.Q  # a single dense problem has one Q, (n, n)

    def spectrum_bounds(self):
        matrices = self.Q[None] if self.shared else self.Q
        bounds = np.array([scipy.linalg.eigvalsh(q.astype(np.float64))[[0, -1]] for q in matrices])
        bounds = np.broadcast_to(bounds, (self.batch_size, 2))
        return bounds[:, 0], bounds[:, 1]

    def eigenbasis(self):
        if self.shared:
            lam, rotation = scipy.linalg.eigh(self.Q)
            return lam[None], rotation
        pairs = [scipy.linalg.eigh(q) for q in self.Q]
        return np.stack([pair[0] for pair in pairs]), np.stack([pair[1] for pair in pairs])

    def minimizer(self):
        """x* = −Q⁻¹c by Cholesky (scipy.linalg.cho_factor); the error names the first problem
        whose Q is not positive definite and its smallest eigenvalue."""
        matrices = [self.Q] * self.batch_size if self.shared else list(self.Q)
        factors = {}
        x = np.empty(self.c.shape, np.float64)
        for p, matrix in enumerate(matrices):
            key = id(matrix)
            if key not in factors:
                factors[key] = _cholesky(matrix, p)
            x[p] = -scipy.linalg.cho_solve(factors[key], self.c[p])
        x = x.astype(self.dtype)
        return x if self.batched else x[0]

    def diagonalize(self):
        lam, rotation = self.eigendecompose()
        if self.shared:
            lam = np.broadcast_to(lam, self.c.shape)
            c = self.c @ rotation
        else:
            c = np.einsum("bi,bij->bj", self.c, rotation)
        diagonal = Quadratic.diagonal(
            lam if self.batched else lam[0], c if self.batched else c[0], self.b if self.batched else self.b[0]
        )
        return diagonal, rotation.astype(self.dtype)


def _linear_and_constant(c, b, dtype, *, batch, n, c_shared=False, c_name="c"):
    """(c of shape (B, n), b of shape (B,), dtype) checked against the batch and dimension."""
    B = 1 if batch is None else batch
    if c is None:
        c = np.zeros((B, n), dtype)
    else:
        c = finite_real_array(c, "c")
        allowed = [(n,)] if batch is None else ([(n,), (B, n)] if c_shared else [(B, n)])
        c = require_shape(c, allowed, c_name)
        dtype = np.promote_types(dtype, c.dtype)
    b = require_shape(finite_real_array(b, "b"), [()] if batch is None else [(), (B,)], "b")
    c = np.array(np.broadcast_to(c, (B, n)), dtype=dtype, order="C")
    b = np.array(np.broadcast_to(b, (B,)), dtype=dtype)
    return c, b, dtype


def _cholesky(matrix, problem_index):
    try:
        return scipy.linalg.cho_factor(matrix.astype(np.float64))
    except np.linalg.LinAlgError as error:
        smallest = scipy.linalg.eigvalsh(matrix.astype(np.float64))[0]
        raise ValueError(
            f"minimizer() needs Q positive definite; Q of problem {problem_index} is not "
            f"(its smallest eigenvalue is {smallest:.6g})"
        ) from error


def ill_conditioned_2d():
    """The textbook's f(x) = 0.1x₁² + 2x₂²: λ = (0.2, 4.0), condition number 20."""
    return Quadratic.diagonal(np.array([0.2, 4.0]))
