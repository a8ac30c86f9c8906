"""`Result`: what an execution of a plan returns, the same for every workflow."""

import functools

import numpy as np

__all__ = ["Result"]

_ARRAYS = ("x", "velocity", "loss", "trajectory", "diverged", "diverged_at", "steps_taken")


def _joined(parts):
    # the unstable flags of a concatenation, from the deferred flags of its pieces
    return np.concatenate([part() for part in parts])


class Result:
    """The outcome of running a plan: per-configuration arrays, batch axis first.

    For a single configuration of a single problem the batch axis is dropped.

    Attributes
    ----------
    x : ndarray, shape (B, n)
        The final iterate; for a diverged configuration, the last iterate within the
        divergence bound (step ``diverged_at − 1``): finite, the state from which it left.
    velocity : ndarray, shape (B, n), or None
        The velocity in the rule's own convention, at the same step as `x`, usable as `v0` to
        continue; None for GD, and for the torch convention before its first step (no
        momentum buffer exists yet).
    loss : ndarray, shape (B, K), or None
        The recorded losses (f(xₜ) at t = recorded_at; for training, the loss on the whole
        data set); NaN after a stop.
    trajectory : ndarray, shape (B, K, n), or None
        The iterates at the same steps; NaN after a stop.
    recorded_at : ndarray of int, shape (K,)
        The step after which each record was taken (0: the start).
    diverged : ndarray of bool, shape (B,)
        True where the configuration diverged: a check (after every 128th step and after the
        last) found some |xᵢ| beyond the plan's divergence bound, or NaN. A magnitude test:
        a slowly diverging configuration may stay within the bound for all the steps; see
        `unstable`.
    diverged_at : ndarray of int, shape (B,)
        For a diverged configuration, the first step whose iterate was beyond the bound
        within the check interval whose check found it (its steps are taken again, one by
        one, to find it; with a small bound, an iterate may leave it and come back between
        two checks unseen); −1 where none diverged.
    steps_taken : ndarray of int, shape (B,)
        The step whose state `x` and `velocity` hold: `steps`, or ``diverged_at − 1``.
    unstable : ndarray of bool, shape (B,), or None
        For a quadratic run with a constant learning rate: True where the iteration matrix
        has spectral radius > 1 for some eigenvalue of the problem, i.e. where the iterates
        grow without bound from almost every start, however few steps were run (evaluated
        at the extreme eigenvalues when first read: until then the result refers to the
        problem; pickling computes it). None for schedules and for training.
    steps : int
        As planned.
    implementation : str
        "kernel", "reference" or "closed-form".
    level : str or None
        The instruction-set level of the kernel that ran ("x86-64-v4", …; None for the other
        implementations). Levels round differently: results agree bit for bit within one.
    n_threads : int
        The threads used.
    seconds : float
        Wall-clock time of the computation (summed over the pieces of a concatenation).
    extras : dict
        What a workflow adds (training: ``w``, ``b``, ``epochs``); also readable as attributes.
        A concatenation keeps those that all its pieces share.
    """

    def __init__(self, *, x, velocity, loss, trajectory, recorded_at, diverged, steps_taken, steps,
                 implementation, n_threads, seconds, diverged_at=None, level=None, extras=None, unstable=None):
        self.x, self.velocity, self.loss, self.trajectory = x, velocity, loss, trajectory
        self.recorded_at, self.diverged, self.steps_taken = recorded_at, diverged, steps_taken
        self._diverged_at = diverged_at  # None: computed from the others when first read
        self._unstable = unstable  # flags, None, or a callable that computes them (_stability)
        self.steps, self.implementation, self.n_threads, self.seconds = steps, implementation, n_threads, seconds
        self.level = level
        self.extras = dict(extras or {})

    @property
    def diverged_at(self):
        if self._diverged_at is None:
            at = np.where(self.diverged, np.add(self.steps_taken, 1), -1)
            self._diverged_at = at if at.ndim else at[()]
        return self._diverged_at

    @diverged_at.setter
    def diverged_at(self, value):
        self._diverged_at = value

    @property
    def unstable(self):
        if callable(self._unstable):
            flags = self._unstable()
            self._unstable = flags if self.batched else flags[0]
        return self._unstable

    def _deferred_unstable(self):
        # the flags, or while they are not computed yet, what computes them (batched form)
        return self._unstable if callable(self._unstable) else self.unstable

    def __getstate__(self):
        _ = self.unstable  # computed before pickling: the computation refers to the problem
        return self.__dict__

    def __setstate__(self, state):
        state = dict(state)
        if "diverged_at" in state:  # (pickled before it was computed when first read)
            state["_diverged_at"] = state.pop("diverged_at")
        self.__dict__.update(state)

    def __getattr__(self, name):
        extras = self.__dict__.get("extras", {})
        if name in extras:
            return extras[name]
        raise AttributeError(f"Result has no attribute {name!r}")

    @property
    def batched(self):
        return np.ndim(self.diverged) == 1

    def __repr__(self):
        shape = "x".join(map(str, np.shape(self.x)))
        problems = np.size(self.diverged)
        recorded = [name for name in ("loss", "trajectory") if getattr(self, name) is not None]
        records = f", {len(self.recorded_at)} records of {recorded}" if recorded else ""
        how = self.implementation + (f" ({self.level})" if self.level else "")
        return (f"Result(x: {shape} {np.asarray(self.x).dtype}, steps={self.steps}, diverged="
                f"{int(np.count_nonzero(self.diverged))} of {problems}{records}, {how} "
                f"on {self.n_threads} thread(s), {self.seconds:.3g} s)")

    def unbatched(self):
        """This result with the batch axis dropped (it must hold one configuration)."""
        if not self.batched:
            return self
        if np.size(self.diverged) != 1:
            raise ValueError(f"only a result of one configuration can drop its batch axis; this has {np.size(self.diverged)}")
        fields = {name: None if getattr(self, name) is None else getattr(self, name)[0] for name in _ARRAYS}
        if not callable(self._unstable):  # (deferred flags stay deferred: the unbatched result takes the first)
            fields["unstable"] = None if self._unstable is None else self._unstable[0]
        return self._replace(fields, self.extras)

    def _replace(self, fields, extras):
        fields = {**{name: getattr(self, name) for name in _ARRAYS}, "unstable": self._deferred_unstable(), **fields}
        return Result(**fields, recorded_at=self.recorded_at, steps=self.steps, implementation=self.implementation,
                      n_threads=self.n_threads, seconds=self.seconds, level=self.level, extras=extras)

    @classmethod
    def concatenate(cls, results):
        """One result from the results of consecutive pieces of a plan (:meth:`Plan.split`)."""
        results = list(results)
        if not results:
            raise ValueError("concatenate needs at least one result")
        if len(results) == 1:
            return results[0]
        first = results[0]
        if not all(r.batched for r in results):
            raise ValueError("concatenate joins batched results (pieces of Plan.split)")
        if any(r.steps != first.steps or not np.array_equal(r.recorded_at, first.recorded_at) for r in results):
            raise ValueError("the results come from different plans (steps or records differ)")
        fields = {}
        deferred = [r._deferred_unstable() for r in results]
        if all(callable(d) for d in deferred):
            fields["unstable"] = functools.partial(_joined, deferred)  # still computed when first read
        for name in _ARRAYS if "unstable" in fields else (*_ARRAYS, "unstable"):
            values = [getattr(r, name) for r in results]
            if any(v is None for v in values) != all(v is None for v in values):
                raise ValueError(f"some results have {name} and others do not")
            fields[name] = None if values[0] is None else np.concatenate(values)
        shared = {key: value for key, value in first.extras.items()
                  if all(key in r.extras and np.array_equal(r.extras[key], value) for r in results)}
        joined = first._replace(fields, shared)
        joined.seconds = sum(r.seconds for r in results)
        joined.n_threads = max(r.n_threads for r in results)
        levels = {r.level for r in results}
        joined.level = levels.pop() if len(levels) == 1 else "mixed"
        return joined
