"""Minibatch SGD with momentum on linear regression: the textbook's experiment, many at once.

`linear_regression` trains one model per configuration of a rule (learning rate, momentum,
convention, nesterov, dampening, schedule) in one compiled kernel, in parallel over
configurations: it plans a :class:`MinibatchLeastSquares` problem with :func:`polyak.plan`
and executes the plan like any other (:func:`polyak.execute`). `sgd_momentum` and `train_from_scratch` are the
textbook's from-scratch update and training loop, over NumPy arrays, for readers following
the book (and a check on the kernel: the same minibatches give the same losses).
"""

import numpy as np

from polyak.execution import execute
from polyak.least_squares import MAX_FEATURES, MinibatchLeastSquares
from polyak.plans import plan

__all__ = ["MinibatchLeastSquares", "MAX_FEATURES", "linear_regression", "sgd_momentum", "train_from_scratch"]


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
        torch's dampening, and a schedule: one multiplier per minibatch step, or a schedule of
        :mod:`polyak.schedules` stepped once per minibatch, as torch's scheduler would be
        (``polyak.Momentum(0.02, 0.9, schedule=polyak.schedules.StepLR(step_size=50))``; at
        least epochs × minibatches steps long).
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
    theta0 = MinibatchLeastSquares.initial_weights(problem.X.shape[1], seed)
    job = plan(problem, rule, theta0, problem.max_steps, record="loss", dtype=problem.dtype,
               divergence_bound=divergence_bound)
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
