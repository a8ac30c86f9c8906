"""NumPy twins of the compiled kernels: readable, slow, and the specification.

Each function here takes the same arguments as the kernel of the same name in
``polyak._kernels`` and writes the same outputs in place; the tests hold every kernel to its
twin on random inputs, and the benchmarks time one against the other.
"""

import numpy as np

__all__ = ["run_diagonal", "CHECK_EVERY"]

#: Divergence is checked after every step that is a multiple of this, and after the last.
CHECK_EVERY = 128


@np.errstate(over="ignore", invalid="ignore")  # divergence is a result, not an error
def run_diagonal(lam, c, b, x, u, lr, beta, schedule, lr_inside, nesterov, dampening,
                 first_step_undamped, every, bound, loss, trajectory, steps_taken, diverged, n_threads):
    """Run B diagonal quadratics f(x) = ½ Σ λᵢxᵢ² + cᵀx + b for T = len(schedule) steps, in place.

    The canonical update, for each problem (row) and step t = 1..T, with ηₜ = lr·schedule[t−1]::

        g  = λ ⊙ x + c
        u ← β u + aₜ g
        x ← x − kₜ u − eₜ g

    where, with the learning rate outside the velocity (``lr_inside=False``: GD, d2l, torch),
    aₜ = 1 on an undamped first step (torch's b₁ = g₁) and 1 − dampening otherwise,
    kₜ = ηₜ (β ηₜ with nesterov); with it inside (mxnet, goodfellow with u = −v), aₜ = ηₜ and
    kₜ = 1 (β with nesterov); eₜ = ηₜ with nesterov and 0 without.

    Recording: ``loss[p, k] = f(x_{k·every})`` and ``trajectory[k, p] = x_{k·every}`` for
    k = 0..T//every, when those arrays are not empty ((B, 0) and (0, B, n) skip them).

    Divergence: after every step t that is a multiple of CHECK_EVERY, and after the last, a
    problem with some |xᵢ| > bound (or NaN) stops there: ``diverged[p] = 1``,
    ``steps_taken[p] = t``, its x and u stay as they were at step t, and its later records are
    NaN. Otherwise ``diverged[p] = 0`` and ``steps_taken[p] = T``. `n_threads` is accepted for
    the kernel's signature and ignored.
    """
    del n_threads
    dtype = x.dtype.type
    steps = schedule.shape[0]
    record_loss, record_trajectory = loss.shape[1] > 0, trajectory.shape[0] > 0
    running = np.ones(x.shape[0], dtype=bool)
    steps_taken[:] = steps
    diverged[:] = 0
    lr, beta = lr[:, None], beta[:, None]

    def record(k):
        rows = running
        if record_loss:
            loss[rows, k] = b[rows] + np.sum(x[rows] * (dtype(0.5) * lam[rows] * x[rows] + c[rows]), axis=1)
        if record_trajectory:
            trajectory[k, rows] = x[rows]

    record(0)
    for s in range(steps):
        rows = running
        eta = lr[rows] * schedule[s]
        if lr_inside:
            a = eta
            k = beta[rows] if nesterov else dtype(1)
        else:
            a = dtype(1) if (s == 0 and first_step_undamped) else dtype(1) - dtype(dampening)
            k = beta[rows] * eta if nesterov else eta
        g = lam[rows] * x[rows] + c[rows]
        u[rows] = beta[rows] * u[rows] + a * g
        x[rows] = x[rows] - k * u[rows] - (eta * g if nesterov else dtype(0))
        t = s + 1
        if t % every == 0:
            record(t // every)
        if t % CHECK_EVERY == 0 or t == steps:
            stopped = running & ~np.all(np.abs(x) <= bound, axis=1)
            steps_taken[stopped] = t
            diverged[stopped] = 1
            running &= ~stopped

    for p in np.flatnonzero(diverged):
        first_missing = steps_taken[p] // every + 1
        if record_loss:
            loss[p, first_missing:] = np.nan
        if record_trajectory:
            trajectory[first_missing:, p] = np.nan
