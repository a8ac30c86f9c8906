"""Minibatch SGD with momentum on linear regression: the textbook's experiment, many at once.

`linear_regression` trains one model per (learning rate, momentum) configuration in one
compiled kernel, in parallel over configurations; `sgd_momentum` and `train_from_scratch`
are the textbook's from-scratch update and training loop, over NumPy arrays, for readers
following the book (and a check on the kernel: the same minibatches give the same losses).
"""

import time
from typing import NamedTuple

import numpy as np

from polyak import reference
from polyak._config import resolve_threads
from polyak._validation import as_int, finite_real_array, require_shape
from polyak.rules import CONVENTIONS, LR_INSIDE_VELOCITY

__all__ = ["linear_regression", "sgd_momentum", "train_from_scratch", "TrainResult"]


class TrainResult(NamedTuple):
    """What `linear_regression` returns (per configuration; unbatched for one configuration).

    loss : (C, K) — the loss on the whole data set at each record.
    epochs : (K,) — the epoch (examples seen / examples per epoch) of each record.
    w : (C, d), b : (C,) — the final weights and bias.
    diverged : (C,) — True where the final loss is not finite.
    seconds_per_epoch : float — wall-clock time of the kernel per epoch (all configurations).
    """

    loss: np.ndarray
    epochs: np.ndarray
    w: np.ndarray
    b: np.ndarray
    diverged: np.ndarray
    seconds_per_epoch: float


def linear_regression(X, y, lr, momentum, *, convention="d2l", nesterov=False, batch_size=10,
                      epochs=2, seed=0, record_every=200, n_threads=None, implementation="kernel"):
    """Train y ≈ Xw + b by minibatch SGD with momentum, once per (lr, momentum) configuration.

    The textbook's setup: squared loss ½(ŷ − y)² averaged over each minibatch, w ~ N(0, 0.01²),
    b = 0, the examples reshuffled every epoch, and after every minibatch that brings the
    count of examples seen to a multiple of `record_every`, the mean loss over all of X
    (with batch_size 10 and record_every 200 on 1500 examples: 15 records over 2 epochs).
    The initial w and every epoch's order come from ``np.random.default_rng(seed)`` (w first,
    then one permutation per epoch), the same for every configuration, so configurations
    differ only in their hyperparameters, and results do not depend on `n_threads`.

    Parameters
    ----------
    X : array_like, shape (N, d), d <= 64;  y : array_like, shape (N,)
        float32 or float64 (the arithmetic follows X's dtype; integers become float64).
    lr, momentum : float or array_like of shape (C,)
        One configuration, or C of them (arrays of equal length; a scalar is shared).
    convention : "d2l", "torch", "mxnet" or "goodfellow"
        How the learning rate meets the velocity (identical for a constant lr).
    nesterov : bool
    batch_size, epochs, seed, record_every : int
    implementation : "kernel" or "reference" (the NumPy twin in polyak.reference)
    """
    X = finite_real_array(X, "X")
    if X.ndim != 2 or X.shape[0] == 0 or not 1 <= X.shape[1] <= 64:
        raise ValueError(f"X must have shape (N, d) with N >= 1 and 1 <= d <= 64; got {X.shape}")
    dtype = X.dtype
    y = np.ascontiguousarray(require_shape(finite_real_array(y, "y"), [(X.shape[0],)], "y"), dtype=dtype)
    X = np.ascontiguousarray(X)
    lr, momentum, C, batched = _configurations(lr, momentum, dtype)
    if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}; got {convention!r}")
    convention = CONVENTIONS[convention.lower()]
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be True or False; got {nesterov!r}")
    if nesterov and (convention == "mxnet" or np.any(momentum <= 0)):
        raise ValueError("nesterov needs momentum > 0 and a convention other than 'mxnet'")
    batch_size = as_int(batch_size, "batch_size", minimum=1)
    epochs = as_int(epochs, "epochs", minimum=0, maximum=10**6)
    record_every = as_int(record_every, "record_every", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    if implementation not in ("kernel", "reference"):
        raise ValueError(f"implementation must be 'kernel' or 'reference'; got {implementation!r}")
    threads = min(resolve_threads(n_threads), C)

    N, d = X.shape
    rng = np.random.default_rng(seed)
    w0 = rng.normal(0.0, 0.01, size=d)
    order = np.array([rng.permutation(N) for _ in range(epochs)], dtype=np.int64).reshape(epochs, N)
    seen = np.cumsum(np.tile(np.diff(np.r_[np.arange(0, N, batch_size), N]), epochs))
    recorded = seen[seen % record_every == 0]
    w = np.array(np.broadcast_to(w0, (C, d)), dtype=dtype, order="C")  # a writeable copy
    b, uw, ub = np.zeros(C, dtype), np.zeros((C, d), dtype), np.zeros(C, dtype)
    loss = np.empty((C, recorded.size), dtype)

    if implementation == "kernel":
        from polyak._kernels._train import train_linear  # noqa: PLC0415
    else:
        train_linear = reference.train_linear
    start = time.perf_counter()
    train_linear(X, y, order, w, b, uw, ub, lr, momentum, convention in LR_INSIDE_VELOCITY,
                 bool(nesterov), batch_size, record_every, loss, threads)
    seconds = time.perf_counter() - start

    with np.errstate(invalid="ignore"):
        diverged = ~np.isfinite(loss[:, -1]) if recorded.size else ~np.all(np.isfinite(w), axis=1)
    result = TrainResult(loss, recorded / N, w, b, diverged, seconds / max(epochs, 1))
    if not batched:
        result = result._replace(loss=loss[0], w=w[0], b=b[0], diverged=diverged[0])
    return result


def _configurations(lr, momentum, dtype):
    lr = finite_real_array(lr, "lr")
    momentum = finite_real_array(momentum, "momentum")
    for name, value in (("lr", lr), ("momentum", momentum)):
        if value.ndim > 1:
            raise ValueError(f"{name} must be a scalar or a 1-D array (one per configuration); got shape {value.shape}")
    if np.any(lr <= 0):
        raise ValueError(f"lr must be > 0; got {np.min(lr)}")
    if np.any((momentum < 0) | (momentum > 1)):
        raise ValueError("momentum must be in [0, 1]")
    sizes = {v.size for v in (lr, momentum) if v.ndim == 1}
    if len(sizes) > 1:
        raise ValueError(f"lr and momentum arrays must have the same length; got {sorted(sizes)}")
    C = sizes.pop() if sizes else 1
    if C == 0:
        raise ValueError("lr and momentum arrays are empty: give at least one configuration")
    as_array = [np.ascontiguousarray(np.broadcast_to(v, (C,)), dtype=dtype) for v in (lr, momentum)]
    return as_array[0], as_array[1], C, lr.ndim == 1 or momentum.ndim == 1


def sgd_momentum(params, states, hyperparams):
    """The textbook's from-scratch update (d2l's ``sgd_momentum``), over NumPy arrays.

    `params` is a list of (parameter, gradient) pairs — the book's tensors and their .grad —
    `states` the velocities, `hyperparams` a dict with "lr" and "momentum"::

        v ← momentum · v + gradient;  parameter ← parameter − lr · v;  gradient ← 0

    all in place.
    """
    for (param, grad), velocity in zip(params, states):
        velocity[:] = hyperparams["momentum"] * velocity + grad
        param[:] -= hyperparams["lr"] * velocity
        grad[:] = 0


def train_from_scratch(X, y, lr, momentum, *, batch_size=10, epochs=2, seed=0, record_every=200):
    """The book's training loop (d2l ``train_ch11``) with `sgd_momentum`, for one configuration.

    Plain NumPy in X's dtype, one minibatch at a time, on the same initial weights and
    minibatches as `linear_regression` with the same seed. Returns (losses, w, b): the mean
    ½(x·w + b − y)² over all of X after every minibatch that brings the examples seen to a
    multiple of `record_every`, and the final weights and bias.
    """
    X, y = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.01, size=X.shape[1]).astype(X.dtype)
    orders = [rng.permutation(len(X)) for _ in range(epochs)]
    b = np.zeros(1, X.dtype)
    grad_w, grad_b = np.zeros_like(w), np.zeros_like(b)
    states = [np.zeros_like(w), np.zeros_like(b)]
    losses, seen = [], 0
    for order in orders:
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            residual = X[batch] @ w + b[0] - y[batch]
            grad_w[:] = X[batch].T @ residual / len(batch)
            grad_b[:] = residual.mean()
            sgd_momentum([(w, grad_w), (b, grad_b)], states, {"lr": lr, "momentum": momentum})
            seen += len(batch)
            if seen % record_every == 0:
                losses.append(0.5 * np.mean((X @ w + b[0] - y) ** 2))
    return np.array(losses), w, b[0]
