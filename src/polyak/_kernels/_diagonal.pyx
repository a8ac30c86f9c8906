"""Momentum-family updates on batches of diagonal quadratics f(x) = ½ Σᵢ λᵢxᵢ² + cᵀx + b.

Every rule and convention reduces (in ``polyak.rules``) to one canonical update:

    g_t = λ ⊙ x_{t-1} + c
    u_t = β u_{t-1} + a_t g_t
    x_t = x_{t-1} − k_t u_t − e_t g_t

with per-step scalars built from η_t = lr · schedule[t-1]:

- learning rate outside the velocity (GD, d2l, torch): a_t = 1 on an undamped first step,
  else 1 − τ; k_t = η_t (β η_t with nesterov); e_t = η_t with nesterov, else 0;
- learning rate inside it (mxnet, goodfellow with u = −v): a_t = η_t; k_t = 1 (β with
  nesterov); e_t = η_t with nesterov, else 0.

``polyak.reference.run_diagonal`` is the NumPy twin of ``run_diagonal``.

Loop order: problems in parallel (one thread owns a problem, so sums within a problem run in
a fixed order whatever the thread count); within a problem, a block of WIDTH coordinates is
held in registers until the next divergence check (at most CHECK_EVERY steps), then the next
block; the last, partial block is padded with zeros. Recorded losses and iterates are written
from the registers, each block adding its share of f(x) to the loss in block order. The
arithmetic is regrouped where that shortens the chain of dependent FMAs (see ``_advance``):
the kernel agrees with its twin to rounding, not bit for bit.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport NAN
from libc.stdint cimport int64_t
from libc.string cimport memcpy

from polyak._kernels._common cimport CHECK_EVERY, step_constants, within

cdef enum:
    WIDTH = 64         # coordinates kept in registers across steps (x and u: 16 AVX-512
                       # registers of float64; larger local arrays stop GCC keeping them there)
    LANES = 8          # interleaved partial sums of the loss


cdef inline void _advance(floating* x, floating* u, const floating* lam, const floating* c,
                          floating beta, const floating* a, const floating* k,
                          const floating* e, Py_ssize_t steps, bint unit_a, bint nesterov,
                          floating* loss, floating* trajectory, Py_ssize_t stride,
                          Py_ssize_t m, Py_ssize_t countdown, Py_ssize_t every) noexcept nogil:
    # for s in range(steps):  g = lam*x + c;  u = beta*u + a[s]*g;  x -= k[s]*u + e[s]*g
    # on WIDTH coordinates (c == NULL: no linear term). The state is copied into local arrays
    # that the compiler keeps in registers for all the steps; unit_a and nesterov are
    # constants at each call site, so each inlined copy is a specialized loop of three FMAs
    # per coordinate. Recording, from registers too: after step `countdown` and every `every`
    # steps after it, loss[r] += this block's share of f(x) and trajectory[r*stride : +m] = x
    # (the first m coordinates are real, the rest padding), for r = 0, 1, ...
    cdef floating xs[WIDTH]
    cdef floating us[WIDTH]
    cdef floating g, v, k_old, e_new
    cdef Py_ssize_t j, s
    for j in range(WIDTH):
        xs[j] = x[j]
        us[j] = u[j]
    for s in range(steps):
        # nesterov: x - k*(beta*u + a*g) - e*g = x - (k*beta)*u_old - (k*a + e)*g, two FMAs
        # that need not wait for the new u (as accurate: forming beta*u + a*g rounds at the
        # size of beta*u too)
        k_old = k[s] * beta
        e_new = k[s] * (1 if unit_a else a[s]) + e[s]
        for j in range(WIDTH):
            g = lam[j] * xs[j] + c[j] if c != NULL else lam[j] * xs[j]
            if unit_a and not nesterov:
                # = beta*u + g, grouped so that beta*u (+ c) is computed off the critical
                # path x -> v -> x: two FMAs of latency per step instead of three
                v = lam[j] * xs[j] + (beta * us[j] + c[j] if c != NULL else beta * us[j])
            elif unit_a:
                v = beta * us[j] + g
            else:
                v = beta * us[j] + a[s] * g
            if nesterov:
                xs[j] = xs[j] - k_old * us[j] - e_new * g
            else:
                xs[j] = xs[j] - k[s] * v
            us[j] = v
        countdown -= 1
        if countdown == 0:
            countdown = every
            if loss != NULL:
                loss[0] += _partial_value(xs, lam, c)
                loss += 1
            if trajectory != NULL:
                for j in range(m):
                    trajectory[j] = xs[j]
                trajectory += stride
    for j in range(WIDTH):
        x[j] = xs[j]
        u[j] = us[j]


cdef inline void _advance_flags(floating* x, floating* u, const floating* lam,
                                const floating* c, floating beta, const floating* a,
                                const floating* k, const floating* e, Py_ssize_t steps,
                                bint unit_a, bint nesterov, floating* loss,
                                floating* trajectory, Py_ssize_t stride, Py_ssize_t m,
                                Py_ssize_t countdown, Py_ssize_t every) noexcept nogil:
    # _advance with unit_a and nesterov made compile-time constants
    if nesterov:
        if unit_a:
            _advance(x, u, lam, c, beta, a, k, e, steps, True, True,
                     loss, trajectory, stride, m, countdown, every)
        else:
            _advance(x, u, lam, c, beta, a, k, e, steps, False, True,
                     loss, trajectory, stride, m, countdown, every)
    elif unit_a:
        _advance(x, u, lam, c, beta, a, k, e, steps, True, False,
                 loss, trajectory, stride, m, countdown, every)
    else:
        _advance(x, u, lam, c, beta, a, k, e, steps, False, False,
                 loss, trajectory, stride, m, countdown, every)


cdef inline void _advance_cases(floating* x, floating* u, const floating* lam,
                                const floating* c, floating beta, const floating* a,
                                const floating* k, const floating* e, Py_ssize_t steps,
                                bint unit_a, bint nesterov, floating* loss,
                                floating* trajectory, Py_ssize_t stride, Py_ssize_t m,
                                Py_ssize_t countdown, Py_ssize_t every) noexcept nogil:
    # _advance_flags with "no recording" (the record code compiled out) and, then, "no linear
    # term" (c == NULL: eight registers fewer) made compile-time constants too; recording runs
    # keep c (zeros where there is no linear term), to keep the number of copies down
    if loss != NULL or trajectory != NULL:
        _advance_flags(x, u, lam, c, beta, a, k, e, steps, unit_a, nesterov,
                       loss, trajectory, stride, m, countdown, every)
    elif c == NULL:
        _advance_flags(x, u, lam, NULL, beta, a, k, e, steps, unit_a, nesterov,
                       NULL, NULL, stride, m, countdown, every)
    else:
        _advance_flags(x, u, lam, c, beta, a, k, e, steps, unit_a, nesterov,
                       NULL, NULL, stride, m, countdown, every)


cdef inline void _advance_block(floating* x, floating* u, const floating* lam,
                                const floating* c, floating beta, const floating* a,
                                const floating* k, const floating* e, Py_ssize_t steps,
                                bint unit_a, bint nesterov, floating* loss,
                                floating* trajectory, Py_ssize_t stride, Py_ssize_t m,
                                Py_ssize_t countdown, Py_ssize_t every) noexcept nogil:
    # _advance on m <= WIDTH coordinates. A partial block is padded with zeros
    # (x = u = lam = c = 0 stays 0 and adds 0 to f) to run the same register-resident loop.
    cdef floating xt[WIDTH]
    cdef floating ut[WIDTH]
    cdef floating lt[WIDTH]
    cdef floating ct[WIDTH]
    cdef Py_ssize_t j
    if m == WIDTH:
        _advance_cases(x, u, lam, c, beta, a, k, e, steps, unit_a, nesterov,
                       loss, trajectory, stride, m, countdown, every)
        return
    for j in range(WIDTH):
        xt[j] = x[j] if j < m else 0
        ut[j] = u[j] if j < m else 0
        lt[j] = lam[j] if j < m else 0
        ct[j] = (c[j] if c != NULL else 0) if j < m else 0
    _advance_cases(xt, ut, lt, ct if c != NULL else NULL, beta, a, k, e, steps, unit_a,
                   nesterov, loss, trajectory, stride, m, countdown, every)
    for j in range(m):
        x[j] = xt[j]
        u[j] = ut[j]


cdef inline floating _partial_value(const floating* x, const floating* lam,
                                    const floating* c) noexcept nogil:
    # sum(x * (0.5*lam*x + c)) over WIDTH coordinates, in LANES interleaved partial sums
    # added in a fixed order
    cdef floating acc[LANES]
    cdef floating total = 0
    cdef Py_ssize_t i, j, q
    for j in range(LANES):
        acc[j] = 0
    for q in range(WIDTH // LANES):
        i = q * LANES
        for j in range(LANES):
            acc[j] += x[i + j] * (<floating>0.5 * lam[i + j] * x[i + j] + c[i + j])
    for j in range(LANES):
        total += acc[j]
    return total


cdef inline floating _block_value(const floating* x, const floating* lam, const floating* c,
                                  Py_ssize_t m) noexcept nogil:
    # the share of f(x) - b of a block of m <= WIDTH coordinates, summed exactly as _advance
    # sums it (zero-padded to WIDTH), so that every record of the loss adds in the same order
    cdef floating xt[WIDTH]
    cdef floating lt[WIDTH]
    cdef floating ct[WIDTH]
    cdef Py_ssize_t j
    if m == WIDTH:
        return _partial_value(x, lam, c)
    for j in range(WIDTH):
        xt[j] = x[j] if j < m else 0
        lt[j] = lam[j] if j < m else 0
        ct[j] = c[j] if j < m else 0
    return _partial_value(xt, lt, ct)


cdef int64_t _run_problem(floating* x, floating* u, const floating* lam, const floating* c,
                          floating b, Py_ssize_t n, floating lr, floating beta,
                          const floating* schedule, Py_ssize_t schedule_stride,
                          Py_ssize_t steps, bint lr_inside,
                          bint nesterov, floating dampening, bint first_step_undamped,
                          Py_ssize_t every, floating bound, floating* loss,
                          floating* trajectory, Py_ssize_t stride,
                          unsigned char* diverged) noexcept nogil:
    # Runs one problem in place; returns the steps taken and sets diverged[0] when it stopped.
    cdef Py_ssize_t records = steps // every + 1
    cdef Py_ssize_t t = 0, t_end, s, q, lo, r, i, countdown, first
    cdef bint unit_a
    cdef bint recording = loss != NULL or trajectory != NULL
    cdef const floating* linear = c if recording or not within(c, n, 0) else NULL
    cdef floating a[CHECK_EVERY]
    cdef floating kx[CHECK_EVERY]
    cdef floating e[CHECK_EVERY]
    diverged[0] = False

    if loss != NULL:
        for r in range(records):
            loss[r] = b  # the blocks add their shares, in block order
        for q in range((n + WIDTH - 1) // WIDTH):
            lo = q * WIDTH
            loss[0] += _block_value(x + lo, lam + lo, c + lo, min(WIDTH, n - lo))
    if trajectory != NULL:
        memcpy(trajectory, x, n * sizeof(floating))

    while t < steps:
        t_end = min((t // CHECK_EVERY + 1) * CHECK_EVERY, steps)
        unit_a = True
        for s in range(t, t_end):
            step_constants(lr, beta, schedule[s * schedule_stride], s == 0, lr_inside, nesterov,
                           dampening, first_step_undamped, &a[s - t], &kx[s - t], &e[s - t])
            unit_a = unit_a and a[s - t] == 1
        first = t // every + 1                  # the next record and its step
        countdown = first * every - t if recording else steps + 1
        for q in range((n + WIDTH - 1) // WIDTH):
            lo = q * WIDTH
            _advance_block(x + lo, u + lo, lam + lo, linear + lo if linear != NULL else NULL,
                           beta, a, kx, e, t_end - t, unit_a, nesterov,
                           loss + first if loss != NULL else NULL,
                           trajectory + first * stride + lo if trajectory != NULL else NULL,
                           stride, min(WIDTH, n - lo), countdown, every)
        t = t_end
        if not within(x, n, bound):
            diverged[0] = True
            break

    # records after the stop did not happen: NaN marks them
    for r in range(t // every + 1, records):
        if loss != NULL:
            loss[r] = NAN
        if trajectory != NULL:
            for i in range(n):
                trajectory[r * stride + i] = NAN
    return t


def check_every():
    """Divergence is checked after each step that is a multiple of this, and after the last."""
    return CHECK_EVERY


def run_diagonal(const floating[:, ::1] lam, const floating[:, ::1] c, const floating[::1] b,
                 floating[:, ::1] x, floating[:, ::1] u,
                 const floating[::1] lr, const floating[::1] beta, const floating[::1] schedule,
                 Py_ssize_t steps, bint lr_inside, bint nesterov, floating dampening, bint first_step_undamped,
                 Py_ssize_t every, floating bound,
                 floating[:, ::1] loss, floating[:, :, ::1] trajectory,
                 int64_t[::1] steps_taken, unsigned char[::1] diverged, int n_threads):
    """Runs the canonical update on B problems in place (see the module docstring).

    NumPy equivalent: ``polyak.reference.run_diagonal`` with the same arguments.

    Shapes: lam, c, x, u (B, n); b, lr, beta, steps_taken, diverged (B,); schedule (T,), or
    (1,) for a constant multiplier;
    loss (B, T // every + 1) or (B, 0) to skip it; trajectory (T // every + 1, B, n) or
    (0, B, n) to skip it. All inputs are validated by the caller; x and u hold x₀, u₀ on
    entry and the final state on return.
    """
    cdef Py_ssize_t p, B = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t stride = B * n
    cdef Py_ssize_t schedule_stride = 0 if schedule.shape[0] == 1 else 1
    cdef bint record_loss = loss.shape[1] > 0
    cdef bint record_trajectory = trajectory.shape[0] > 0
    cdef floating* loss_row
    cdef floating* trajectory_row
    with nogil:
        for p in prange(B, schedule="static", num_threads=n_threads):
            loss_row = &loss[p, 0] if record_loss else NULL
            trajectory_row = &trajectory[0, p, 0] if record_trajectory else NULL
            steps_taken[p] = _run_problem(
                &x[p, 0], &u[p, 0], &lam[p, 0], &c[p, 0], b[p], n, lr[p], beta[p],
                &schedule[0], schedule_stride, steps, lr_inside, nesterov, dampening,
                first_step_undamped, every, bound, loss_row, trajectory_row, stride, &diverged[p])
