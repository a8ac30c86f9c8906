"""NumPy twins of the compiled kernels: readable, slow, and the specification.

- :func:`momentum_in_convention` is every convention's update written out as its library
  writes it (the table of :mod:`polyak.rules`), one configuration, one step at a time: the
  specification that :func:`polyak.rules.canonical_coefficients` is held to;
- :func:`momentum` is the canonical update that every run kernel implements (diagonal and
  dense quadratics, minibatch linear regression), one step at a time, for any gradient;
- :func:`quadratic_gradient` and :func:`minibatch_gradient` are the gradients those kernels
  compute;
- :func:`sgd_step` is the fused optimizer step of :class:`polyak.optim.SGD`;
- :func:`sweep` is the sweep kernel's: metrics of configurations on the error coordinates.

The tests hold every kernel to its twin on random inputs and every convention to its
formula, and the benchmarks time kernel against twin. ``polyak.execute(plan, "reference")``
runs a plan through :func:`momentum`.
"""

import numpy as np

from polyak.plans import COLUMNS

__all__ = ["CHECK_EVERY", "momentum", "momentum_in_convention", "quadratic_gradient", "minibatch_gradient",
           "sgd_step", "step_coefficients", "sweep"]

#: Divergence is checked after every step that is a multiple of this, and after the last.
CHECK_EVERY = 128


def momentum_in_convention(convention, gradient, x0, lrs, beta, *, nesterov=False, dampening=0.0, v0=None):
    """Each convention's update as its library writes it, one step at a time.

    With gₜ = gradient(xₜ₋₁) and ηₜ = lrs[t−1] for t = 1..T::

        d2l, optax     vₜ = β vₜ₋₁ + gₜ;        xₜ = xₜ₋₁ − ηₜ vₜ   (nesterov: − ηₜ (gₜ + β vₜ))
        torch          b₁ = g₁, bₜ = β bₜ₋₁ + (1 − τ) gₜ;   xₜ = xₜ₋₁ − ηₜ bₜ   (nesterov: gₜ + β bₜ)
        mxnet          vₜ = β vₜ₋₁ + ηₜ gₜ;     xₜ = xₜ₋₁ − vₜ
        goodfellow     vₜ = β vₜ₋₁ − ηₜ gₜ;     xₜ = xₜ₋₁ + vₜ      (nesterov: + β vₜ − ηₜ gₜ)

    from x₀ and v₀ (zero, or `v0`: then torch continues its buffer). Returns (x_T, v_T) in the
    convention's own form, float64. Independent of the canonical form the kernels run.
    """
    x = np.array(x0, dtype=np.float64)
    v = np.zeros_like(x) if v0 is None else np.array(v0, dtype=np.float64)
    have_buffer = v0 is not None
    for eta in lrs:
        g = gradient(x)
        if convention == "d2l":
            v = beta * v + g
            x = x - eta * (g + beta * v) if nesterov else x - eta * v
        elif convention == "torch":
            v = beta * v + (1 - dampening) * g if have_buffer else g.copy()
            have_buffer = True
            x = x - eta * (g + beta * v if nesterov else v)
        elif convention == "mxnet":
            v = beta * v + eta * g
            x = x - v
        elif convention == "goodfellow":
            v = beta * v - eta * g
            x = x + beta * v - eta * g if nesterov else x + v
        else:
            raise ValueError(f"convention must be 'd2l', 'torch', 'mxnet' or 'goodfellow'; got {convention!r}")
    return x, v


def step_coefficients(table, multiplier, first_step):
    """(β, a, k, e) of every configuration for one step: columns of a plan's coefficient table.

    a = (a_first on a fresh run's first step, else a_fixed) + a_scaled·s, k = k_fixed +
    k_scaled·s, e = e_fixed + e_scaled·s, with s the step's learning-rate multiplier
    (see polyak.plans.COLUMNS); each as a column (B, 1).
    """
    column = {name: table[:, j, None] for j, name in enumerate(COLUMNS)}
    a = column["a_first" if first_step else "a_fixed"] + column["a_scaled"] * multiplier
    k = column["k_fixed"] + column["k_scaled"] * multiplier
    e = column["e_fixed"] + column["e_scaled"] * multiplier
    return column["beta"], a, k, e


@np.errstate(over="ignore", invalid="ignore")  # divergence is a result, not an error
def momentum(gradient, x, u, table, schedule, steps, *, value=None, recorded_at=(), trajectory=False,
             bound=np.inf):
    """The canonical update on B configurations (the rows of x and u), in place.

    For t = 0 … T−1, with s the learning-rate multiplier schedule[t] (schedule[0] for every
    step when the schedule has one entry)::

        g = gradient(x, t)
        u ← β u + aₜ g
        x ← x − kₜ u − eₜ g

    with β, aₜ, kₜ, eₜ from each configuration's row of `table` (:func:`step_coefficients`).

    Records: after each step listed in `recorded_at` (0: before the first step), the loss
    ``value(x)`` (when `value` is given) and x (when `trajectory`).

    Divergence: after every step that is a multiple of CHECK_EVERY, and after the last, a
    configuration with some |xᵢ| > bound (or NaN) has diverged. The steps since the previous
    check are taken again from the state saved there, checking after each: the configuration
    stops at the last step before the first whose x is beyond the bound, with that step's x
    and u, and its later records are NaN.

    Returns (loss (B, K) or None, trajectory (B, K, n) or None, steps_taken, diverged).
    """
    B, n = x.shape
    recorded_at = np.asarray(recorded_at, dtype=np.int64)
    loss = np.full((B, recorded_at.size), np.nan, x.dtype) if value is not None else None
    states = np.full((B, recorded_at.size, n), np.nan, x.dtype) if trajectory else None
    steps_taken = np.full(B, steps, np.int64)
    diverged = np.zeros(B, bool)
    stopped = {}  # configuration -> (x, u) at its stop; the arrays run on and are restored at the end
    scratch = np.empty_like(x)
    with_e = np.any(table[:, [COLUMNS.index("e_fixed"), COLUMNS.index("e_scaled")]] != 0)  # some e·g term

    def record(t):
        for r in np.flatnonzero(recorded_at == t):
            if loss is not None:
                loss[:, r] = value(x)
            if states is not None:
                states[:, r] = x

    def step(x, u, t):
        beta, a, k, e = (v.astype(x.dtype) for v in step_coefficients(table, schedule[t % len(schedule)], t == 0))
        g = gradient(x, t)
        u *= beta                                    # u = β u + a g, in place
        u += g if np.all(a == 1) else np.multiply(a, g, out=scratch)
        x -= np.multiply(k, u, out=scratch)          # x = x − k u − e g
        if with_e:
            x -= np.multiply(e, g, out=scratch)

    def within(x):
        return np.all(np.abs(x) <= bound, axis=1)

    record(0)
    for start in range(0, steps, CHECK_EVERY):
        end = min(start + CHECK_EVERY, steps)
        saved = x.copy(), u.copy()
        for t in range(start, end):
            step(x, u, t)
            record(t + 1)
        found = ~within(x) & ~diverged
        if found.any():  # the interval again, for all rows, to find where each went beyond
            again_x, again_u = saved[0].copy(), saved[1].copy()
            for t in range(start, end):
                before = again_x.copy(), again_u.copy()
                step(again_x, again_u, t)
                for p in np.flatnonzero(found & ~within(again_x) & ~diverged):
                    steps_taken[p], diverged[p] = t, True
                    stopped[p] = (before[0][p], before[1][p])
        if diverged.all():
            break  # every configuration has stopped: a run's cost is bounded by its work

    for p, (x_stop, u_stop) in stopped.items():
        x[p], u[p] = x_stop, u_stop
        later = recorded_at > steps_taken[p]
        if loss is not None:
            loss[p, later] = np.nan
        if states is not None:
            states[p, later] = np.nan
    return loss, states, steps_taken, diverged


@np.errstate(over="ignore", invalid="ignore")
def sweep(lam, e0, table, schedule, steps, *, tol=None, every=None, bound=np.inf):
    """The NumPy twin of ``_kernels._sweep.sweep_diagonal``, one row per configuration.

    lam, e0 (C, n): each configuration's eigenvalues and starting error e = x − x*; table
    (C, 8): its coefficients. On the scaled error w = √λ e (f − f* = ½ Σᵢ wᵢ²): the canonical
    update (g = λ w, u ← β u + a g, w ← w − k u − e g) for the first two steps and, with a
    varying schedule, every step; with a constant one, from the third step on the two-term
    recurrence w ← τ w − δ w_prev, τ = 1 + β − (k a + e) λ, δ = β (1 − e λ) that the update
    then obeys (Cayley–Hamilton). Per configuration: f − f* after the last step (inf where
    diverged), the first step t in 0..T with f − f* <= tol (−1: never; None without tol), the
    magnitude test |eᵢ| = |wᵢ| / √λᵢ <= bound after every CHECK_EVERY-th step and the last (a
    diverged configuration stops: its later records are NaN), and f − f* every `every`
    steps. Returns (final_loss, steps_to_tol, diverged, loss).
    """
    C = e0.shape[0]
    W = np.sqrt(lam) * e0
    U, previous = np.zeros_like(W), None
    limit = np.minimum(np.sqrt(lam) * min(bound, np.finfo(np.float64).max), np.finfo(np.float64).max)
    constant = len(schedule) == 1
    gone = np.zeros(C, bool)
    K = steps // every + 1 if every else 0
    loss = np.full((C, K), np.nan)
    steps_to_tol = np.full(C, -1, np.int64) if tol is not None else None

    def observe(t):
        value = 0.5 * np.sum(W * W, axis=1)
        if steps_to_tol is not None:
            steps_to_tol[(steps_to_tol < 0) & (value <= tol) & ~gone] = t
        if every and t % every == 0:
            loss[~gone, t // every] = value[~gone]

    observe(0)
    for t in range(steps):
        beta, a, k, e = step_coefficients(table, schedule[t % len(schedule)], t == 0)
        if constant and t >= 2:
            tau, delta = 1 + beta - (k * a + e) * lam, beta * (1 - e * lam)
            W, previous = tau * W - delta * previous, W
        else:
            g = lam * W
            U = beta * U + a * g
            W, previous = W - k * U - e * g, W
        observe(t + 1)
        if (t + 1) % CHECK_EVERY == 0 or t + 1 == steps:
            found = ~np.all(np.abs(W) <= limit, axis=1) & ~gone
            gone |= found
            W[gone], U[gone], previous[gone] = 0.0, 0.0, 0.0
    final_loss = np.where(gone, np.inf, 0.5 * np.sum(W * W, axis=1))
    return final_loss, steps_to_tol, gone, loss if every else None


def quadratic_gradient(curvature, c, b):
    """(gradient, value) of f(x) = ½ xᵀQx + cᵀx + b for :func:`momentum`.

    `curvature(x)` is Q x for each row of x (problem p's Q for row p); c (B, n), b (B,).
    The gradient is Q x + c, the value b + Σᵢ xᵢ (½ (Qx)ᵢ + cᵢ).
    """
    half = c.dtype.type(0.5)
    linear = np.any(c != 0)

    def gradient(x, t):
        g = curvature(x)
        if linear:  # skipping a zero c saves a pass
            g += c
        return g

    def value(x):
        return b + np.sum(x * (half * curvature(x) + c), axis=1)

    return gradient, value


def minibatch_gradient(X, y, order, batch_size):
    """(gradient, value) of linear regression with θ = (w, b), for :func:`momentum`.

    Step t's gradient is that of the mean of ½(x·w + b − y)² over its minibatch: minibatch
    t mod M of epoch t div M's order (M = ⌈N / batch_size⌉; the last may be shorter),
    i.e. the mean of r·(x, 1) with r = x·w + b − y. The value is that mean over all of X.
    """
    N = X.shape[0]
    per_epoch = -(-N // batch_size)
    half = X.dtype.type(0.5)

    def residual(theta, rows):
        return theta[:, :-1] @ X[rows].T + theta[:, -1:] - y[rows]  # (B, m)

    def gradient(theta, t):
        start = (t % per_epoch) * batch_size
        rows = order[t // per_epoch, start:start + batch_size]
        r = residual(theta, rows)
        return np.concatenate([r @ X[rows], r.sum(axis=1, keepdims=True)], axis=1) / len(rows)

    def value(theta):
        r = residual(theta, slice(None))
        return half * np.mean(r * r, axis=1)

    return gradient, value


def sgd_step(param, grad, buf, *, sign, decay, decoupled, beta, a, k, e, momentum, first):
    """One fused optimizer step on flat arrays, in place (twin of ``_kernels._sgd.sgd_step``)::

        g = sign·grad + decay·param            (coupled weight decay)
        param ← param − decoupled·param        (Keras' decoupled weight decay, lr·wd)
        u = a·g (first) or β·buf + a·g;  buf ← u             (with momentum)
        param ← param − k·u − e·g  (momentum)  or  param − k·g  (without)
    """
    g = sign * grad + decay * param
    param -= decoupled * param
    if not momentum:
        param -= k * g
        return
    buf[...] = a * g if first else beta * buf + a * g
    param -= k * buf
    param -= e * g
