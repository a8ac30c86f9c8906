"""Minibatch SGD with momentum on linear regression: the textbook's experiment, many at once.

`linear_regression` trains one model per configuration of a rule (learning rate, momentum,
convention, nesterov, dampening, schedule) in one compiled kernel, in parallel over
configurations: it plans a :class:`MinibatchLeastSquares` problem and executes the plan like
any other (:func:`polyak.execute`). `sgd_momentum` and `train_from_scratch` are the
textbook's from-scratch update and training loop, over NumPy arrays, for readers following
the book (and a check on the kernel: the same minibatches give the same losses).
"""

import numpy as np

from polyak._validation import as_int, finite_real_array, read_only, require_shape
from polyak.execution import execute
from polyak.plans import Plan, _divergence_bound, coefficient_table
from polyak.rules import _Rule

__all__ = ["MinibatchLeastSquares", "linear_regression", "plan_linear_regression", "sgd_momentum",
           "train_from_scratch"]

#: The most features the training kernel takes (its gradient lives on the stack).
MAX_FEATURES = 64


def _restore(fields):
    # construction, unpickling and copying: the arrays are (again) read-only
    problem = object.__new__(MinibatchLeastSquares)
    for name, value in fields.items():
        object.__setattr__(problem, name, read_only(value) if isinstance(value, np.ndarray) else value)
    return problem


class MinibatchLeastSquares:
    """Linear regression y ≈ Xw + b trained on a fixed sequence of minibatches.

    The loss is the mean of ½(x·w + b − y)²; the parameters θ = (w, b) have d + 1 entries.
    Every epoch visits the examples in its own order (a row of `order`), in minibatches of
    `batch_size` (the last may be shorter). After every minibatch that brings the count of
    examples seen to a multiple of `record_every`, the loss on all of X is recorded. The
    problem is the same for every configuration that trains on it. Immutable; picklable.

    Make one with :meth:`shuffled`. Attributes: X (N, d), y (N,), order (epochs, N),
    batch_size, record_every; kind "least-squares".
    """

    kind = "least-squares"
    batched = False

    def __setattr__(self, name, value):
        raise AttributeError("MinibatchLeastSquares is immutable; make a new one")

    def __delattr__(self, name):
        raise AttributeError("MinibatchLeastSquares is immutable; make a new one")

    def __reduce__(self):
        return _restore, ({name: getattr(self, name) for name in ("X", "y", "order", "batch_size", "record_every")},)

    @classmethod
    def shuffled(cls, X, y, *, batch_size=10, epochs=2, seed=0, record_every=200):
        """The textbook's setup: a fresh permutation of the examples for every epoch.

        X (N, d) with 1 <= d <= 64 and y (N,): float32 or float64 (the arithmetic follows
        X's dtype; integers become float64). The orders come from ``np.random.default_rng(seed)``
        after the initial weights (:meth:`initial_weights`), one permutation per epoch.
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
        return _restore(dict(X=np.ascontiguousarray(X), y=y, order=order, batch_size=batch_size,
                             record_every=record_every))

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
    def steps_per_epoch(self):
        return -(-self.X.shape[0] // self.batch_size)

    @property
    def epochs(self):
        return self.order.shape[0]

    def rows(self, start, stop):
        """The problem (one problem: every configuration trains on it)."""
        return self

    def examples_seen(self, steps):
        """The count of examples seen after each of the first `steps` minibatch steps."""
        N = self.X.shape[0]
        sizes = np.tile(np.diff(np.r_[np.arange(0, N, self.batch_size), N]), self.epochs)[:steps]
        return np.cumsum(sizes)

    def recorded_at(self, steps):
        """The steps after which the loss is recorded (step t: after t minibatches), within `steps`."""
        seen = self.examples_seen(steps)
        return np.flatnonzero(seen % self.record_every == 0).astype(np.int64) + 1

    def __repr__(self):
        N, d = self.X.shape
        return (f"MinibatchLeastSquares(N={N}, d={d}, batch_size={self.batch_size}, epochs={self.epochs}, "
                f"record_every={self.record_every}, dtype={self.X.dtype})")


def plan_linear_regression(problem, rule, *, seed=0, divergence_bound=None):
    """The plan of training `problem` with every configuration of `rule` for all its epochs.

    Every configuration starts from the same θ₀ (:meth:`MinibatchLeastSquares.initial_weights`
    with `seed`) and sees the same minibatches, so configurations differ only in their
    hyperparameters. A schedule gives the learning-rate multiplier of each minibatch step.
    """
    if not isinstance(problem, MinibatchLeastSquares):
        raise TypeError(f"problem must be a polyak.train.MinibatchLeastSquares; got {type(problem).__name__}")
    if not isinstance(rule, _Rule):
        raise TypeError(f"rule must be polyak.GD or polyak.Momentum; got {type(rule).__name__}")
    steps = problem.epochs * problem.steps_per_epoch
    if rule.schedule is not None and rule.schedule.size < steps:
        raise ValueError(f"schedule has {rule.schedule.size} multipliers but training takes {steps} steps")
    B = rule.batch_length or 1
    dtype = problem.X.dtype
    return Plan(
        kind=problem.kind, problem=problem, problem_index=np.zeros(B, np.int64),
        coefficients=coefficient_table(rule, B, fresh=True),
        schedule=np.ones(1) if rule.schedule is None or steps == 0 else np.array(rule.schedule[:steps], dtype=float),
        x0=MinibatchLeastSquares.initial_weights(problem.X.shape[1], seed)[None], u0=np.zeros((0, problem.dim)),
        steps=steps, every=1, record=("loss",), recorded_at=problem.recorded_at(steps),
        divergence_bound=_divergence_bound(divergence_bound, dtype), dtype=dtype,
        velocity_sign=rule.velocity_sign, has_velocity=rule.has_velocity,
        buffer_at_start=not rule.undamped_first_step, batched=rule.batch_length is not None,
    )


def linear_regression(X, y, rule, *, batch_size=10, epochs=2, seed=0, record_every=200, n_threads=None,
                      implementation="kernel", divergence_bound=None):
    """Train y ≈ Xw + b by minibatch SGD, once per configuration of `rule`.

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
    rule : GD or Momentum
        One configuration, or C of them (arrays of lr and β): any convention, nesterov,
        torch's dampening, and a schedule (one multiplier per minibatch step).
    batch_size, epochs, seed, record_every : int
    n_threads : int, optional
    implementation : "kernel" or "reference" (the NumPy twin in polyak.reference)
    divergence_bound : float, optional
        |θᵢ| beyond which a configuration stops as diverged (checked as in `run`).

    Returns
    -------
    Result
        x = θ = (w, b) (C, d + 1), velocity, loss (C, K), recorded_at (the minibatch steps
        of the records), diverged, steps_taken; extras ``w`` (C, d), ``b`` (C,) and
        ``epochs`` (K,) (examples seen / N at each record). Unbatched for one configuration.
    """
    problem = MinibatchLeastSquares.shuffled(X, y, batch_size=batch_size, epochs=epochs, seed=seed,
                                             record_every=record_every)
    job = plan_linear_regression(problem, rule, seed=seed, divergence_bound=divergence_bound)
    result = execute(job, implementation, n_threads=n_threads)
    N, d = problem.X.shape
    seen = problem.examples_seen(job.steps)[job.recorded_at - 1]
    result.extras.update(w=result.x[..., :d], b=result.x[..., d], epochs=seen / N)
    return result


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
