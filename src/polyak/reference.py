"""NumPy twins of the compiled kernels: readable, slow, and the specification.

Each function here takes the same arguments as the kernel of the same name in
``polyak._kernels`` and writes the same outputs in place; the tests hold every kernel to its
twin on random inputs, and the benchmarks time one against the other.
"""

import numpy as np

__all__ = ["run_diagonal", "run_dense", "sgd_step", "train_linear", "CHECK_EVERY"]

#: Divergence is checked after every step that is a multiple of this, and after the last.
CHECK_EVERY = 128


def run_diagonal(lam, c, b, x, u, lr, beta, schedule, steps, lr_inside, nesterov, dampening,
                 first_step_undamped, every, bound, loss, trajectory, steps_taken, diverged, n_threads):
    """Run B diagonal quadratics f(x) = ½ Σ λᵢxᵢ² + cᵀx + b for T = `steps` steps, in place.

    The canonical update, for each problem (row) and step t = 1..T, with ηₜ = lr·schedule[t−1]
    (`schedule` has T entries, or one: a constant multiplier)::

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
    _run(lambda points, out: np.multiply(lam, points, out=out), c, b, x, u, lr, beta, schedule, steps,
         lr_inside, nesterov, dampening, first_step_undamped, every, bound, loss, trajectory, steps_taken, diverged)


def run_dense(Q, c, b, x, u, g, lr, beta, schedule, steps, lr_inside, nesterov, dampening,
              first_step_undamped, every, bound, loss, trajectory, steps_taken, diverged, n_threads):
    """`run_diagonal` for dense quadratics f(x) = ½ xᵀQx + cᵀx + b: the gradient is Qx + c.

    `Q` is (n, n), shared by the batch, or (B, n, n), one per problem (the twin of both
    ``run_dense_shared`` and ``run_dense_batched``); `g` (B, n) is the kernels' workspace.
    """
    if Q.ndim == 2:
        def product(points, out):
            return np.matmul(points, Q, out=out)  # Q is symmetric: x Q = (Q x)ᵀ row by row
    else:
        def product(points, out):
            return np.einsum("bij,bj->bi", Q, points, out=out)
    _run(product, c, b, x, u, lr, beta, schedule, steps, lr_inside, nesterov, dampening,
         first_step_undamped, every, bound, loss, trajectory, steps_taken, diverged)


@np.errstate(over="ignore", invalid="ignore")  # divergence is a result, not an error
def _run(curvature, c, b, x, u, lr, beta, schedule, steps, lr_inside, nesterov, dampening,
         first_step_undamped, every, bound, loss, trajectory, steps_taken, diverged):
    # the canonical update with gradient g = curvature(x) + c (curvature(x, out) writes Q x)
    one = x.dtype.type(1)
    if schedule.shape[0] == 1:
        schedule = np.broadcast_to(schedule, (steps,))
    record_loss, record_trajectory = loss.shape[1] > 0, trajectory.shape[0] > 0
    steps_taken[:] = steps
    diverged[:] = 0
    lr, beta = lr[:, None], beta[:, None]
    g, scratch = np.empty_like(x), np.empty_like(x)
    has_linear_term = np.any(c != 0)
    stopped_state = {}  # problem -> (x, u) at its stop; the arrays run on and are restored at the end

    def record(k):
        if record_loss:
            loss[:, k] = b + np.sum(x * (x.dtype.type(0.5) * curvature(x, scratch) + c), axis=1)
        if record_trajectory:
            trajectory[k] = x

    record(0)
    for s in range(steps):
        eta = lr * schedule[s]
        if lr_inside:
            a = eta
            k = beta if nesterov else one
        else:
            a = one if (s == 0 and first_step_undamped) else one - x.dtype.type(dampening)
            k = beta * eta if nesterov else eta
        curvature(x, g)
        if has_linear_term:
            g += c                                     # g = Q x + c
        u *= beta
        u += g if a is one else np.multiply(a, g, out=scratch)  # u = β u + a g
        x -= np.multiply(k, u, out=scratch)            # x = x − k u − e g
        if nesterov:
            x -= np.multiply(eta, g, out=scratch)
        t = s + 1
        if t % every == 0:
            record(t // every)
        if t % CHECK_EVERY == 0 or t == steps:
            for p in np.flatnonzero(~np.all(np.abs(x) <= bound, axis=1) & (diverged == 0)):
                steps_taken[p], diverged[p] = t, 1
                stopped_state[p] = (x[p].copy(), u[p].copy())

    for p, (x_stop, u_stop) in stopped_state.items():
        x[p], u[p] = x_stop, u_stop
        first_missing = steps_taken[p] // every + 1
        if record_loss:
            loss[p, first_missing:] = np.nan
        if record_trajectory:
            trajectory[first_missing:, p] = np.nan


def sgd_step(param, grad, buf, sign, decay, decoupled, beta, a, k, e, momentum, first, nesterov, n_threads):
    """One fused optimizer step on flat arrays, in place (twin of ``_kernels._sgd.sgd_step``)::

        g = sign·grad + decay·param            (coupled weight decay)
        param ← param − decoupled·param        (Keras' decoupled weight decay, lr·wd)
        u = g (first, torch) or β·buf + a·g;  buf ← u          (with momentum)
        param ← param − k·u − e·g  (momentum)  or  param − k·g  (without)

    `n_threads` is accepted for the kernel's signature and ignored.
    """
    del n_threads
    g = sign * grad + decay * param
    param -= decoupled * param
    if not momentum:
        param -= k * g
        return
    buf[...] = g if first else beta * buf + a * g
    param -= k * buf
    if nesterov:
        param -= e * g


def train_linear(X, y, order, w, b, uw, ub, lr, beta, lr_inside, nesterov, batch_size, record_every,
                 loss, n_threads):
    """Minibatch SGD with momentum on linear regression, C configurations, in place.

    Twin of ``_kernels._train.train_linear``: per epoch e and minibatch of ``order[e]``, the
    gradient of mean ½(x·w + b − y)² over the batch, then the canonical update
    u = β u + a g, p ← p − k u − e g on (w, b) (a, k, e from lr, β, lr_inside, nesterov as in
    `run_diagonal`); after each minibatch that makes the examples seen a multiple of
    `record_every`, the next column of `loss` gets the mean ½(x·w + b − y)² over all of X.
    """
    del n_threads
    N = X.shape[0]
    lr, beta = lr[:, None], beta[:, None]           # one row per configuration
    one = np.ones_like(lr)
    a = lr if lr_inside else one
    k = (beta if lr_inside else beta * lr) if nesterov else (one if lr_inside else lr)
    e = lr if nesterov else 0 * lr
    b, ub = b[:, None], ub[:, None]                 # views: (C, 1) columns
    seen, records = 0, 0
    for epoch_order in order:
        for start in range(0, N, batch_size):
            batch = epoch_order[start:start + batch_size]
            residual = w @ X[batch].T + b - y[batch]        # (C, m)
            grad_w = residual @ X[batch] / len(batch)        # (C, d)
            grad_b = residual.sum(axis=1, keepdims=True) / len(batch)
            uw[...] = beta * uw + a * grad_w
            ub[...] = beta * ub + a * grad_b
            w -= k * uw + e * grad_w
            b -= k * ub + e * grad_b
            seen += len(batch)
            if seen % record_every == 0:
                residual = w @ X.T + b - y
                loss[:, records] = X.dtype.type(0.5) * np.mean(residual * residual, axis=1)
                records += 1
