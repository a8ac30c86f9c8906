"""`SweepResult`: the metrics of a sweep on its named axes, in memory or read from a store."""

import numpy as np

#: The per-configuration arrays of a SweepResult (loss and steps_to_tol when asked for).
METRICS = ("final_loss", "steps_to_tol", "diverged", "rate", "loss")


class _Metric:
    """An array attribute that may be given as a loader (a function of no arguments), called
    on first access: a result read from a store loads only the metrics that are used."""

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.slot]
        if callable(value):
            value = instance.__dict__[self.slot] = value()
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.slot] = value


class SweepResult:
    """The metrics of a sweep, one entry per configuration, on the sweep's axes.

    Attributes
    ----------
    final_loss : ndarray of float
        f(x_T) − f* = ½ Σ λᵢ eᵢ² after the last step (inf where diverged). The kernel runs
        with flush-to-zero: a loss, or an error, below the smallest normal float (about
        2.2e-308) is 0.
    steps_to_tol : ndarray of int64, or None
        The first t in 0..T with f(x_t) − f* <= tol; −1 where never (None without `tol`).
    diverged : ndarray of bool
        Some |eᵢ| was beyond the divergence bound at a check (after every 128th step and the
        last), the magnitude test of :func:`polyak.run`. A configuration whose rate is above
        1 but whose error is still within the bound after T steps is not diverged.
    rate : ndarray of float, or None
        The worst spectral radius over the spectrum (:func:`polyak.analysis.rate`), for a
        constant learning rate; None with a schedule.
    loss : ndarray, shape dims + (K,), or None
        f − f* every `every` steps (t = 0, every, …); NaN after a divergence was found.
    recorded_at : ndarray of int64, shape (K,)
    dims : tuple of str
        The axis names, in the order (problem, lr, beta, nesterov) of those given as arrays,
        or ("config",) for a random search (``grid=False``).
    coords : dict
        The values along each axis (for "config": the lr, beta and nesterov of each).
    constants : dict
        The hyperparameters given as scalars (shared by every configuration).
    steps : int
    seconds : float
        The time spent computing (summed over the calls that filled a store).
    spectrum : tuple or None
        (μ, L): the smallest positive and the largest eigenvalue of the problems swept.
    store : str or None
        The store the result was written to or read from.

    Results read from a store (:func:`polyak.load_sweep`, or ``sweep(..., store=)``) load each
    metric from it when first used.
    """

    final_loss = _Metric()
    steps_to_tol = _Metric()
    diverged = _Metric()
    rate = _Metric()
    loss = _Metric()

    def __init__(self, *, final_loss, steps_to_tol, diverged, rate, loss, recorded_at, dims, coords, steps, seconds,
                 tol, constants=None, shape=None, store=None, spectrum=None):
        self.constants = dict(constants or {})
        self.final_loss, self.steps_to_tol, self.diverged, self.rate = final_loss, steps_to_tol, diverged, rate
        self.loss, self.recorded_at, self.dims, self.coords = loss, recorded_at, dims, coords
        self.steps, self.seconds, self.tol, self.store = steps, seconds, tol, store
        self.spectrum = None if spectrum is None else tuple(spectrum)
        self._shape = None if shape is None else tuple(shape)

    @property
    def shape(self):
        return self._shape if self._shape is not None else self.final_loss.shape

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def _configuration(self, index):
        """The hyperparameters and metrics of the configuration at `index` (a tuple), as a dict."""
        values = dict(self.constants)
        if self.dims == ("config",):
            values.update({name: _item(self.coords[name][index[0]]) for name in self.coords})
        else:
            values.update({dim: _item(self.coords[dim][i]) for dim, i in zip(self.dims, index)})
        for name in ("final_loss", "steps_to_tol", "diverged", "rate"):
            array = getattr(self, name)
            if array is not None:
                values[name] = _item(array[index])
        return values

    def best(self, by="steps_to_tol"):
        """The winning configuration: fewest steps to tol (ties: lower final loss), or lowest
        final_loss (``by="final_loss"``), or lowest rate (``by="rate"``); a dict of its
        hyperparameters and metrics. None when no configuration qualifies (none reached tol)."""
        if by == "steps_to_tol":
            if self.steps_to_tol is None:
                raise ValueError("best(by='steps_to_tol') needs a sweep run with tol=; use by='final_loss'")
            steps = np.where(self.steps_to_tol < 0, np.iinfo(np.int64).max, self.steps_to_tol)
            order = np.lexsort((self.final_loss.ravel(), steps.ravel()))
            if steps.ravel()[order[0]] == np.iinfo(np.int64).max:
                return None
            flat = order[0]
        elif by in ("final_loss", "rate"):
            values = getattr(self, by)
            if values is None:
                raise ValueError(f"this sweep has no {by} (a schedule has no rate)")
            flat = int(np.argmin(np.where(np.isnan(values), np.inf, values)))
        else:
            raise ValueError(f"by must be 'steps_to_tol', 'final_loss' or 'rate'; got {by!r}")
        return self._configuration(np.unravel_index(flat, self.shape))

    def to_xarray(self):
        """An ``xarray.Dataset``: one data variable per metric, named dims with coordinates."""
        try:
            import xarray  # noqa: PLC0415 -- optional
        except ImportError as error:
            raise ImportError("SweepResult.to_xarray needs xarray: pip install 'polyak[sweep]'") from error
        variables = {name: (self.dims, getattr(self, name)) for name in METRICS[:-1] if getattr(self, name) is not None}
        if self.loss is not None:
            variables["loss"] = ((*self.dims, "t"), self.loss)
        coords = {name: (("config",) if self.dims == ("config",) else (name,), values)
                  for name, values in self.coords.items()}
        if self.loss is not None:
            coords["t"] = ("t", self.recorded_at)
        return xarray.Dataset(variables, coords=coords, attrs=dict(steps=self.steps, tol=-1.0 if self.tol is None
                                                                    else self.tol))

    def to_dataframe(self):
        """A ``pandas.DataFrame``, one row per configuration (through :meth:`to_xarray`)."""
        try:
            import pandas  # noqa: F401, PLC0415 -- optional
        except ImportError as error:
            raise ImportError("SweepResult.to_dataframe needs pandas: pip install 'polyak[sweep]'") from error
        return self.to_xarray().drop_vars(["loss", "t"], errors="ignore").to_dataframe()

    def __repr__(self):
        grid = " × ".join(f"{dim} {size}" for dim, size in zip(self.dims, self.shape)) or "one configuration"
        best = self.best("steps_to_tol") if self.steps_to_tol is not None else self.best("final_loss")
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (best or {}).items())
        return (f"SweepResult({grid}, steps={self.steps}, diverged {np.mean(self.diverged):.1%}, "
                f"best: {shown or 'none reached tol'}, {self.seconds:.3g} s)")


def _item(value):
    return value.item() if isinstance(value, np.generic) else value
