"""Monte Carlo of the noisy quadratic model: many runs of the stochastic heavy ball, in a kernel.

A run of configuration (η, β, b, p) simulates every direction of the model (a bin of count k
is k independent directions with the same h and c), with the update of ``polyak._nqm_model``

    θ_{t+1} = θ_t − η P (H θ_t + ε_t) + β (θ_t − θ_{t−1}),   θ_{−1} = θ_0,   ε_t ~ N(0, diag(c)/b),

from θ_0 = √s0 in every direction. Its loss ℓ(θ_t) = ½ Σ hᵢ θᵢ,t² (over all directions) is
recorded at t = 0, every, 2·every, ..., steps; over ``replicas`` independent runs the result
holds the mean loss and its standard error at each record.

Why a fixed θ_0 = √s0: the noise is symmetric, so the curve of a run from −√s0 has the
distribution of one from +√s0 (flip the signs of its noise), and a run from ±√s0 with random
signs (any θ_0 with θ_0² = s0) has the distribution of a run from √s0 — direction by direction,
and the directions are independent. Its expected loss is that of any start with E[θ_0²] = s0,
Gaussian N(0, s0) included (θ_t = A_t θ_0 + N_t with noise N_t independent of θ_0, so
E[θ_t²] = A_t² E[θ_0²] + E[N_t²]): the mean curve is the closed form's
(``polyak.nqm.expected_loss``), while the spread between runs is that of starts of fixed
magnitude (the record at t = 0 has standard error 0).
"""

import math

import numpy as np

from polyak._config import kernels, level, resolve_threads
from polyak._memory import require_memory
from polyak._nqm_model import query
from polyak._validation import as_int, read_only
from polyak.execution import _call_kernel

__all__ = ["simulate", "SimulationResult"]

#: Limits of the noise generator's counters (32-bit words): replicas per configuration,
#: configurations, and directions (two per counter); steps (two per counter) kept at 2³¹.
MAX_STEPS = 2**31
MAX_REPLICAS = 2**31
MAX_CONFIGURATIONS = 2**31
MAX_DIRECTIONS = 2**32
#: The seed is Philox's 64-bit key.
MAX_SEED = 2**64 - 1
#: Per-unit partial statistics beyond this many bytes are computed a slice of the
#: configurations at a time (the results are the same: each configuration has its own counter).
_PARTIALS_BYTES = 256 * 2**20
#: Work per direction-step, in the multiply-adds that polyak.execution's interrupt threshold counts.
_WORK_PER_DIRECTION_STEP = 10


class SimulationResult:
    """The Monte Carlo estimate of the expected loss of the noisy quadratic model.

    Attributes
    ----------
    mean : ndarray, shape (configurations..., K)
        The mean over the replicas of the loss ½ Σ hᵢ θᵢ,t² at t = ``t[k]``; inf or NaN where a
        configuration diverged (its iterates overflowed).
    stderr : ndarray, shape (configurations..., K)
        The standard error of that mean: the standard deviation over the replicas (ddof=1)
        divided by √replicas.
    t : ndarray of int64, shape (K,)
        The steps recorded: 0, every, 2·every, ..., steps (K = steps // every + 1).
    lr, beta, batch_size, precondition : ndarray, shape (configurations...)
        The configurations, broadcast against each other.
    replicas, seed, steps, every : int
    level : str
        The instruction-set level of the kernel that ran (its rounding differs from another
        level's; the noise drawn is the same).
    """

    def __init__(self, *, mean, stderr, t, lr, beta, batch_size, precondition, replicas, seed,
                 steps, every, level):
        self.mean, self.stderr, self.t = read_only(mean), read_only(stderr), read_only(t)
        self.lr, self.beta = read_only(lr), read_only(beta)
        self.batch_size, self.precondition = read_only(batch_size), read_only(precondition)
        self.replicas, self.seed, self.steps, self.every, self.level = replicas, seed, steps, every, level

    def __repr__(self):
        shape = "x".join(map(str, self.mean.shape))
        diverged = int(np.count_nonzero(~np.isfinite(self.mean[..., -1]))) if self.mean.size else 0
        return (f"SimulationResult(mean: {shape}, replicas={self.replicas}, seed={self.seed}, "
                f"steps={self.steps}, every={self.every}, diverged={diverged}, level={self.level})")


def simulate(model, steps, *, lr, beta=0.0, batch_size=1, precondition=0.0, replicas, seed,
             every=1, n_threads=None):
    """Monte Carlo of the noisy quadratic model: the mean loss of `replicas` runs per configuration.

    Parameters
    ----------
    model : polyak.nqm.NoisyQuadratic
    steps : int
        Steps of every run (0 ≤ steps ≤ 2³¹).
    lr, beta, batch_size, precondition : array_like
        The configurations: learning rate η > 0, momentum β in [0, 1), batch size b (integers
        ≥ 1), preconditioning power p (P = diag(h^(−p))), broadcast against each other.
    replicas : int
        Independent runs per configuration (2 ≤ replicas ≤ 2³¹).
    seed : int
        The generator's key (0 ≤ seed < 2⁶⁴): the same seed gives the same numbers, bit for
        bit, whatever ``n_threads``.
    every : int
        Record the loss every this many steps (≥ 1).
    n_threads : int, optional
        Threads (default: all, see ``polyak.show_config()``).

    Returns
    -------
    SimulationResult
        ``.mean`` and ``.stderr`` of shape (configurations..., K), ``.t`` (K,), K = steps // every + 1.

    Notes
    -----
    Each run starts at θ_0 = √s0 in every direction (see the module docstring: the distribution
    of its loss curve is that of a start ±√s0 with random signs, its mean that of any start with
    E[θ_0²] = s0) and follows, per direction, v_{t+1} = β v_t − η h^(1−p) θ_t − σ z_t,
    θ_{t+1} = θ_t + v_{t+1} (v_0 = 0), with σ² = η² h^(−2p) c / b and z_t standard normal.
    The normals come from Philox4x32-10 keyed by the seed, one counter per (pair of steps,
    replica, direction pair, configuration) — configuration k is the k-th of the broadcast
    configurations in C order — through the Box–Muller transform of 32-bit uniforms, all within
    the kernel (see ``polyak._kernels._nqm`` for the stream and its accuracy). The kernel runs
    with flush-to-zero: a loss below about 2.2e-308 is 0. A diverging configuration's curve
    turns to inf or NaN; the others are unaffected.
    """
    steps = as_int(steps, "steps", minimum=0, maximum=MAX_STEPS)
    replicas = as_int(replicas, "replicas", minimum=2, maximum=MAX_REPLICAS)
    every = as_int(every, "every", minimum=1)
    seed = as_int(seed, "seed", minimum=0, maximum=MAX_SEED)
    threads = resolve_threads(n_threads)
    q, _ = query(model, lr=lr, beta=beta, batch_size=batch_size, precondition=precondition)
    count = math.prod(q.shape)
    if count > MAX_CONFIGURATIONS:
        raise ValueError(f"simulate takes at most {MAX_CONFIGURATIONS} configurations (the generator's "
                         f"counter); got {count} (shape {q.shape})")
    directions = model.dimension
    if directions > MAX_DIRECTIONS:
        raise ValueError(f"simulate takes models of at most {MAX_DIRECTIONS} directions; got {directions}")
    records = steps // every + 1
    t = np.arange(records, dtype=np.int64) * every
    mean = np.empty((count, records))
    stderr = np.empty((count, records))
    module = kernels("_nqm")
    units = -(-replicas // module.lanes())
    per_call = max(1, min(count, _PARTIALS_BYTES // (16 * units * records)))
    workspace = threads * module.workspace_bytes(directions)
    require_memory(16.0 * count * records + 16.0 * min(count, per_call) * units * records + workspace
                   + 24.0 * directions, "this simulation",
                   ["fewer configurations or records (a larger every=)", "fewer replicas"
                    if per_call == 1 else None])
    if count:
        bins = np.repeat(np.arange(model.n, dtype=np.int64), model.counts)
        weights = np.ascontiguousarray(0.5 * model.h[bins])
        theta0 = np.ascontiguousarray(np.sqrt(model.s0)[bins])
        x = np.ascontiguousarray(q.x.reshape(count, model.n), dtype=np.float64)
        noise_std = np.sqrt(q.noise.reshape(count, model.n))
        betas = np.ascontiguousarray(q.beta.reshape(count), dtype=np.float64)
        unit_mean = np.empty((min(count, per_call) * units, records))
        unit_m2 = np.empty_like(unit_mean)
        for lo in range(0, count, per_call):
            hi = min(count, lo + per_call)
            _call_kernel(module.simulate, _WORK_PER_DIRECTION_STEP * (hi - lo) * replicas * directions * steps,
                         x=x[lo:hi], noise_std=noise_std[lo:hi], beta=betas[lo:hi], bins=bins,
                         weights=weights, theta0=theta0, first_configuration=lo, steps=steps, every=every,
                         replicas=replicas, seed=seed, unit_mean=unit_mean[: (hi - lo) * units],
                         unit_m2=unit_m2[: (hi - lo) * units], mean=mean[lo:hi], stderr=stderr[lo:hi],
                         n_threads=threads)
    return SimulationResult(mean=mean.reshape(q.shape + (records,)), stderr=stderr.reshape(q.shape + (records,)),
                            t=t, lr=q.lr, beta=q.beta, batch_size=q.batch_size, precondition=q.precondition,
                            replicas=replicas, seed=seed, steps=steps, every=every, level=level())
