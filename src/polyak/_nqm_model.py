"""The noisy quadratic model's data and the validation of a query against it.

Loss ℓ(θ) = ½ Σᵢ countsᵢ hᵢ θᵢ² (each hᵢ standing for countsᵢ directions); a step sees the
gradient g = Hθ + ε, ε independent across steps, zero mean, Cov(ε) = diag(c)/b. With the
preconditioner P = diag(h^(−p)), learning rate η and momentum β, direction i moves as

    θ_{t+1} = θ_t − η hᵢ^(−p) gᵢ + β (θ_t − θ_{t−1}),   θ_{−1} = θ_0,   E[θ_0²] = s0ᵢ,

so it sees the effective curvature xᵢ = η hᵢ^(1−p) and the noise variance per step
σᵢ² = η² hᵢ^(−2p) cᵢ / b. Everything the closed forms and the simulation need is (x, σ², s0)
per direction plus the weights ½ countsᵢ hᵢ of the loss.
"""

from dataclasses import dataclass

import numpy as np

from polyak._validation import as_int, finite_real_array, read_only

__all__ = ["NoisyQuadratic", "Query", "query"]


def _vector(value, name, n=None):
    array = np.asarray(finite_real_array(value, name), dtype=np.float64)
    if n is None:
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array; got shape {array.shape}")
        return array
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) like h; got shape {array.shape}")
    return array


class NoisyQuadratic:
    """The noisy quadratic model of Zhang et al. (NeurIPS 2019).

    Parameters
    ----------
    h : array_like, shape (n,)
        Curvatures hᵢ > 0 (the diagonal of H).
    c : array_like, shape (n,) or scalar, optional
        Gradient-noise variances at batch size 1, cᵢ >= 0; the default is ``h`` (the paper's
        choice, where the noise covariance equals the Hessian).
    counts : array_like of int, shape (n,), optional
        How many directions share each curvature (integers >= 0; the paper bins 10⁴
        eigenvalues into 100). The default is one each. An empty bin adds nothing.
    s0 : float or array_like, shape (n,)
        E[θ₀²] per direction (>= 0), 1 by default.

    Attributes
    ----------
    h, c, s0 : ndarray, shape (n,)
    counts : ndarray of int64, shape (n,)
    dimension : int
        The number of directions the model stands for, Σ countsᵢ.
    """

    def __init__(self, h, c=None, counts=None, s0=1.0):
        h = _vector(h, "h")
        if np.any(h <= 0):
            raise ValueError(f"h must be > 0 (curvatures of a convex quadratic); got min {h.min()}")
        n = h.size
        c = h.copy() if c is None else _vector(c, "c", n)
        if np.any(c < 0):
            raise ValueError(f"c must be >= 0 (noise variances); got min {c.min()}")
        s0 = _vector(s0, "s0", n)
        if np.any(s0 < 0):
            raise ValueError(f"s0 must be >= 0 (a second moment E[θ₀²]); got min {s0.min()}")
        if counts is None:
            counts = np.ones(n, dtype=np.int64)
        else:
            raw = np.asarray(counts)
            if raw.dtype.kind not in "iu" and not (raw.dtype.kind == "f" and np.all(raw == np.round(raw))):
                raise TypeError(f"counts must be integers; got dtype {raw.dtype}")
            counts = _vector(raw, "counts", n).astype(np.int64)
            if np.any(counts < 0):
                raise ValueError(f"counts must be >= 0; got min {counts.min()}")
            if counts.sum() == 0:
                raise ValueError("counts must not all be 0: the model would have no direction")
        self.h, self.c, self.s0 = read_only(h), read_only(c), read_only(s0)
        self.counts = read_only(counts)

    @classmethod
    def binned(cls, h, c=None, *, bins=100, s0=1.0):
        """Many directions binned log-uniformly by curvature, as the paper bins its 10⁴ into 100.

        The bins split [min h, max h] into `bins` equal intervals of log h; each stands for its
        directions by their mean h and mean c and their count (so Σ counts·h and Σ counts·c,
        the trace and the total noise, are kept); an empty bin has count 0 (and h its upper
        edge). ``NoisyQuadratic.binned(1 / np.arange(1, 10_001))`` is the paper's model.
        """
        h = _vector(h, "h")
        c = h if c is None else _vector(c, "c", h.size)
        bins = as_int(bins, "bins", minimum=1)
        if np.any(h <= 0):
            raise ValueError(f"h must be > 0 (curvatures of a convex quadratic); got min {h.min()}")
        edges = np.geomspace(h.min(), h.max(), bins + 1) if h.max() > h.min() else np.full(bins + 1, h[0])
        index = np.clip(np.searchsorted(edges, h, side="right") - 1, 0, bins - 1)
        counts = np.bincount(index, minlength=bins)
        filled = np.maximum(counts, 1)
        mean_h = np.where(counts > 0, np.bincount(index, weights=h, minlength=bins) / filled, edges[1:])
        mean_c = np.bincount(index, weights=c, minlength=bins) / filled
        return cls(mean_h, mean_c, counts=counts, s0=s0)

    @property
    def n(self):
        """The number of distinct curvatures (bins)."""
        return self.h.size

    @property
    def dimension(self):
        return int(self.counts.sum())

    @property
    def weights(self):
        """½ countsᵢ hᵢ: the loss is Σᵢ weightsᵢ E[θᵢ²]."""
        return 0.5 * self.counts * self.h

    def initial_loss(self):
        """E[ℓ(θ₀)] = ½ Σᵢ countsᵢ hᵢ s0ᵢ."""
        return float(np.dot(self.weights, self.s0))

    def __repr__(self):
        return (f"NoisyQuadratic(n={self.n} curvatures in [{self.h.min():.3g}, {self.h.max():.3g}], "
                f"{self.dimension} directions, E[loss_0]={self.initial_loss():.6g})")

    def __eq__(self, other):
        return isinstance(other, NoisyQuadratic) and all(
            np.array_equal(getattr(self, name), getattr(other, name)) for name in ("h", "c", "counts", "s0"))

    __hash__ = None


@dataclass(frozen=True)
class Query:
    """A validated query: the arguments broadcast to ``shape``, and per direction (last axis,
    length n) the effective curvature ``x`` = η h^(1−p) and the noise variance ``noise`` =
    η² h^(−2p) c / b, both of shape ``shape + (n,)``."""

    shape: tuple
    lr: np.ndarray
    beta: np.ndarray
    batch_size: np.ndarray
    precondition: np.ndarray
    x: np.ndarray
    noise: np.ndarray


def _real(value, name):
    return np.asarray(finite_real_array(value, name), dtype=np.float64)


def _batch_sizes(value):
    raw = np.asarray(value)
    if raw.dtype.kind == "b" or raw.dtype.kind not in "iuf":
        raise TypeError(f"batch_size must be integers >= 1; got dtype {raw.dtype}")
    sizes = _real(raw, "batch_size")
    if np.any(sizes != np.round(sizes)) or np.any(sizes < 1):
        bad = sizes[(sizes != np.round(sizes)) | (sizes < 1)]
        raise ValueError(f"batch_size must be integers >= 1; got {bad.flat[0]}")
    return sizes


def query(model, *, lr, beta=0.0, batch_size=1, precondition=0.0, extra=None):
    """Validate (lr, beta, batch_size, precondition) and broadcast them (and the arrays in
    `extra`, a dict name -> already validated array) together; returns ``(Query, extras)``."""
    if not isinstance(model, NoisyQuadratic):
        raise TypeError(f"model must be a polyak.nqm.NoisyQuadratic; got {type(model).__name__}")
    lr = _real(lr, "lr")
    if np.any(lr <= 0):
        raise ValueError(f"lr must be > 0; got {lr[lr <= 0].flat[0]}")
    beta = _real(beta, "beta")
    if np.any((beta < 0) | (beta >= 1)):
        raise ValueError(f"beta must be in [0, 1); got {beta[(beta < 0) | (beta >= 1)].flat[0]}")
    sizes = _batch_sizes(batch_size)
    power = _real(precondition, "precondition")
    extra = dict(extra or {})
    named = {"lr": lr, "beta": beta, "batch_size": sizes, "precondition": power, **extra}
    try:
        arrays = np.broadcast_arrays(*named.values())
    except ValueError:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in named.items())
        raise ValueError(f"the arguments must broadcast against each other (NumPy's rules); got {shapes}") from None
    lr, beta, sizes, power = arrays[:4]
    expanded = [array[..., None] for array in (lr, sizes, power)]
    # P = h^(−p) and x = η h^(1−p) as exp(· log h): NumPy's power rounds differently for a scalar
    # and an array exponent, which would make a query's numbers depend on its arguments' shapes;
    # p = 0 (P = 1, x = η h) and p = 1 (x = η) exactly
    exponent, log_h = expanded[2], np.log(model.h)
    scale = np.where(exponent == 0, 1.0, np.exp(-exponent * log_h))
    x = expanded[0] * np.where(exponent == 0, model.h, np.where(exponent == 1, 1.0, np.exp((1 - exponent) * log_h)))
    noise = expanded[0] ** 2 * scale**2 * model.c / expanded[1]
    result = Query(lr.shape, lr, beta, sizes, power, x, noise)
    return result, dict(zip(extra, arrays[4:]))
