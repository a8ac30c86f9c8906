"""Linear regression trained on a fixed sequence of minibatches: a problem for `polyak.plan`."""

import numpy as np

from polyak._validation import as_int, finite_real_array, read_only, require_shape

__all__ = ["MinibatchLeastSquares", "MAX_FEATURES"]

#: The most features the training kernel takes (its gradient lives on the stack).
MAX_FEATURES = 64
_FIELDS = ("X", "y", "order", "minibatch_size", "record_every")


def _restore(fields):
    # construction, unpickling and copying: the arrays are (again) read-only and checked
    problem = object.__new__(MinibatchLeastSquares)
    for name, value in fields.items():
        object.__setattr__(problem, name, read_only(value) if isinstance(value, np.ndarray) else value)
    problem.check()
    return problem


class MinibatchLeastSquares:
    """Linear regression y ≈ Xw + b trained on a fixed sequence of minibatches.

    The loss is the mean of ½(x·w + b − y)²; the parameters θ = (w, b) have d + 1 entries.
    Every epoch visits the examples in its own order (a row of `order`), in minibatches of
    `minibatch_size` (the last may be shorter); step t takes minibatch t mod M of epoch
    t div M (M = ⌈N / minibatch_size⌉). After every minibatch that brings the count of
    examples seen to a multiple of `record_every`, the loss on all of X is recorded. One
    problem (``batch_size`` 1), the same for every configuration that trains on it.
    Immutable; picklable.

    Make one with :meth:`shuffled`. Attributes: X (N, d), y (N,), order (epochs, N),
    minibatch_size, record_every; kind "least-squares".
    """

    kind = "least-squares"
    plan_kind = "least-squares"
    batched = False
    batch_size = 1
    recordable = ("loss",)

    def __setattr__(self, name, value):
        raise AttributeError("MinibatchLeastSquares is immutable; make a new one")

    def __delattr__(self, name):
        raise AttributeError("MinibatchLeastSquares is immutable; make a new one")

    def __reduce__(self):
        return _restore, ({name: getattr(self, name) for name in _FIELDS},)

    @classmethod
    def shuffled(cls, X, y, *, batch_size=10, epochs=2, seed=0, record_every=200):
        """The textbook's setup: a fresh permutation of the examples for every epoch.

        X (N, d) with 1 <= d <= 64 and y (N,): float32 or float64 (the arithmetic follows
        X's dtype; integers become float64); `batch_size` is the minibatch size. The orders
        come from ``np.random.default_rng(seed)`` after the initial weights
        (:meth:`initial_weights`), one permutation per epoch.
        """
        X = finite_real_array(X, "X")
        if X.ndim != 2 or X.shape[0] == 0 or not 1 <= X.shape[1] <= MAX_FEATURES:
            raise ValueError(f"X must have shape (N, d) with N >= 1 and 1 <= d <= {MAX_FEATURES}; got {X.shape}")
        y = np.ascontiguousarray(require_shape(finite_real_array(y, "y"), [(X.shape[0],)], "y"), dtype=X.dtype)
        batch_size = as_int(batch_size, "batch_size", minimum=1)
        epochs = as_int(epochs, "epochs", minimum=0, maximum=10**6)
        record_every = as_int(record_every, "record_every", minimum=1)
        seed = as_int(seed, "seed", minimum=0)
        N = X.shape[0]
        rng = np.random.default_rng(seed)
        rng.normal(size=X.shape[1])  # the initial weights come first (initial_weights)
        order = np.array([rng.permutation(N) for _ in range(epochs)], dtype=np.int64).reshape(epochs, N)
        return _restore(dict(X=np.ascontiguousarray(X), y=y, order=order, minibatch_size=batch_size,
                             record_every=record_every))

    def check(self):
        """ValueError unless the arrays fit together as the training kernel needs them."""
        X, y, order = self.X, self.y, self.order
        N = X.shape[0] if X.ndim == 2 else 0
        fits = (X.ndim == 2 and N >= 1 and 1 <= X.shape[1] <= MAX_FEATURES and X.dtype in (np.float32, np.float64)
                and y.shape == (N,) and y.dtype == X.dtype and order.ndim == 2 and order.shape[1] == N
                and np.issubdtype(order.dtype, np.integer) and (order.size == 0 or (order.min() >= 0 and order.max() < N))
                and int(self.minibatch_size) >= 1 and int(self.record_every) >= 1)
        if not fits:
            raise ValueError(f"a MinibatchLeastSquares needs X (N, d <= {MAX_FEATURES}), y (N,) of X's dtype and "
                             f"order (epochs, N) of indices below N; got X {X.shape}, y {y.shape}, order {order.shape}")

    @staticmethod
    def initial_weights(d, seed=0):
        """The textbook's w ~ N(0, 0.01²) (d of them) and b = 0, drawn first from the seed."""
        w = np.random.default_rng(seed).normal(0.0, 0.01, size=d)
        return np.append(w, 0.0)

    @property
    def dim(self):
        """d + 1, the number of parameters."""
        return self.X.shape[1] + 1

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def steps_per_epoch(self):
        """M = ⌈N / minibatch_size⌉."""
        return -(-self.X.shape[0] // self.minibatch_size)

    @property
    def epochs(self):
        return self.order.shape[0]

    @property
    def max_steps(self):
        """The minibatch steps the orders hold: epochs · M."""
        return self.epochs * self.steps_per_epoch

    def operands(self):
        """The arrays a plan computes with, by name."""
        return {"X": self.X, "y": self.y}

    def rows(self, start, stop):
        """The problem (one problem: every configuration trains on it)."""
        return self

    def examples_seen(self, steps):
        """The count of examples seen after each of the first `steps` minibatch steps."""
        N = self.X.shape[0]
        sizes = np.tile(np.diff(np.r_[np.arange(0, N, self.minibatch_size), N]), self.epochs)[:steps]
        return np.cumsum(sizes)

    def record_steps(self, steps, every=None):
        """The steps after which the loss is recorded (step t: after t minibatches), within
        `steps`: where the examples seen reach a multiple of `record_every` (`every` is not used)."""
        seen = self.examples_seen(steps)
        return np.flatnonzero(seen % self.record_every == 0).astype(np.int64) + 1

    def __repr__(self):
        N, d = self.X.shape
        return (f"MinibatchLeastSquares(N={N}, d={d}, minibatch_size={self.minibatch_size}, epochs={self.epochs}, "
                f"record_every={self.record_every}, dtype={self.X.dtype})")
