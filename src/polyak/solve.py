"""`run`: an update rule on a batch of problems, planned and executed in one call."""

from polyak.execution import execute
from polyak.plans import DIVERGENCE_BOUND, plan

__all__ = ["run", "DIVERGENCE_BOUND"]


def run(problem, rule, x0, steps, *, v0=None, record=None, every=1, n_threads=None, dtype=None,
        divergence_bound=None, implementation="kernel"):
    """Run an update rule for `steps` steps on every problem of a batch at once.

    ``run(...)`` is ``execute(plan(...), implementation, n_threads=n_threads)``: see
    :func:`polyak.plan` and :func:`polyak.execute` for the pieces.

    Parameters
    ----------
    problem : Quadratic
        One problem or a batch of B, diagonal or dense (a dense Q shared by the batch takes
        one BLAS matrix product per step for all problems).
    rule : GD or Momentum
        The update rule; array hyperparameters give one value per problem. A single problem
        with hyperparameter arrays of length B runs as a batch of B copies of it.
    x0 : array_like, shape (n,) or (B, n)
        The starting point, shared by the batch or one per problem. A single problem with
        scalar hyperparameters and x0 of shape (B, n) runs B starts of it. Every |x0ᵢ| must be
        within the divergence bound.
    steps : int
        Number of steps T >= 0.
    v0 : array_like, shape (n,) or (B, n), optional
        The starting velocity in the rule's convention (e.g. a previous result's
        `velocity`); zero when omitted. Given, a torch-convention run continues an existing
        momentum buffer (no undamped first step). Not for GD.
    record : None, "loss", "trajectory" or ("loss", "trajectory")
        What to record every `every` steps, starting with t = 0.
    every : int
        Recording interval >= 1.
    n_threads : int, optional
        Threads over problems (1 to 1024; at most B are used); the OpenMP default
        (OMP_NUM_THREADS) when None. Results do not depend on it. A dense Q shared by the
        batch is the exception: the BLAS threads its one matrix product per step (its own
        setting, e.g. OPENBLAS_NUM_THREADS) and the rest runs on one thread.
    dtype : float32 or float64, optional
        Arithmetic precision; float32 when the problem and x0 (and v0) are float32, else float64.
        The reference implementation also takes np.longdouble, for accuracy checks.
    divergence_bound : float, optional
        |xᵢ| beyond which a problem counts as diverged: 1e100 (float64) or 1e15 (float32) by
        default. Checked after every 128th step and after the last; a problem found beyond it
        stops at the last step before the first beyond it (``Result.diverged_at``), keeping
        that finite iterate. See also ``Result.unstable`` (spectral radius > 1).
    implementation : "kernel", "reference" or "closed-form"
        The compiled kernel, its NumPy twin in :mod:`polyak.reference` (the specification),
        or the iterates in closed form (constant learning rate; see :func:`polyak.execute`).

    Returns
    -------
    Result
        x, velocity, loss (B, K), trajectory (B, K, n), diverged, steps_taken; unbatched for
        a single problem run with scalar hyperparameters.
    """
    job = plan(problem, rule, x0, steps, v0=v0, record=record, every=every, dtype=dtype,
               divergence_bound=divergence_bound)
    return execute(job, implementation, n_threads=n_threads)
