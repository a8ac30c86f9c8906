"""`SGD`: an optimizer step over NumPy arrays with PyTorch's `torch.optim.SGD` algorithm.

With convention "torch" (the default) one step does, for each parameter p with gradient g
(all hyperparameters as they are at that step)::

    g ← −g                           if maximize
    g ← g + weight_decay · p         if weight_decay ≠ 0
    if momentum ≠ 0:
        b ← g                        on the first step (no buffer yet: no dampening)
        b ← momentum · b + (1 − dampening) · g       afterwards
        g ← g + momentum · b         if nesterov, else g ← b
    p ← p − lr · g

The other conventions (see polyak.rules): "d2l" v ← μv + g, p ← p − lr·v (nesterov: PyTorch's
form); "mxnet" v ← μv + lr·g, p ← p − v; "goodfellow"/"keras" m ← μm − lr·g, p ← p + m
(nesterov: p ← p + μm − lr·g) with Keras' decoupled weight decay p ← p − lr·weight_decay·p
before the step. "d2l" and "mxnet" add weight decay to the gradient, as "torch" does.

Each step is one fused pass over all arrays (typed Cython, one parallel loop over fixed chunks),
with no temporaries; the coefficients of each convention come from
:func:`polyak.rules.canonical_coefficients`, and the fused arithmetic (FMAs,
p − (lr·μ)b − lr·g for nesterov) equals PyTorch's within rounding, not bit for bit. NaN or
infinite gradients are not checked: they propagate into the parameters and buffers as in
PyTorch. Parameters may not share memory, nor a gradient with another parameter (the
parallel update would race).

The optimizer holds its parameter arrays, never their addresses: a copy (``copy.deepcopy``)
or an unpickled optimizer updates its own arrays.
"""

import functools
import numbers
from typing import NamedTuple

import numpy as np

from polyak._config import kernels, resolve_threads
from polyak.rules import NEGATED_VELOCITY, canonical_coefficients, check_form, resolve_convention

__all__ = ["SGD"]

_HYPERPARAMETERS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")


def _check(settings, convention):
    """PyTorch's argument checks, plus those of the other conventions; ValueError/TypeError."""
    for name in ("lr", "momentum", "dampening", "weight_decay"):
        value = settings[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number; got {value!r}")
        if not np.isfinite(float(value)):
            raise ValueError(f"{name} must be finite; got {value}")
    for name in ("nesterov", "maximize"):
        if not isinstance(settings[name], (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False; got {settings[name]!r}")
    if settings["lr"] < 0:
        raise ValueError(f"Invalid learning rate (lr): {settings['lr']} (must be >= 0)")
    if settings["momentum"] < 0:
        raise ValueError(f"Invalid momentum value: {settings['momentum']} (must be >= 0)")
    if settings["weight_decay"] < 0:
        raise ValueError(f"Invalid weight_decay value: {settings['weight_decay']} (must be >= 0)")
    if settings["nesterov"] and (settings["momentum"] <= 0 or settings["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    check_form(convention, settings["dampening"], settings["nesterov"])  # what each convention allows


class SGD:
    """Stochastic gradient descent with momentum over a list of NumPy arrays, updated in place.

    Parameters
    ----------
    params : list of ndarray
        float32 or float64 arrays, writeable and contiguous (C or Fortran order).
    lr, momentum, dampening, weight_decay : float
        As in ``torch.optim.SGD`` (lr, momentum, weight_decay >= 0); dampening only with
        convention "torch".
    nesterov, maximize : bool
        As in ``torch.optim.SGD``.
    convention : str
        "torch" (default), "d2l", "mxnet", "goodfellow" or "keras"; see the module docstring.
    n_threads : int, optional
        Threads for large arrays; the OpenMP default when None.

    The hyperparameters are attributes and may change between steps (each assignment is
    checked like the constructor's arguments); ``state_dict`` / ``load_state_dict`` save and
    restore the momentum buffers and hyperparameters exactly. ``params`` is the tuple of the
    arrays it updates, fixed at construction.
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 *, maximize=False, convention="torch", n_threads=None):
        object.__setattr__(self, "convention", resolve_convention(convention))
        settings = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        _check(settings, self.convention)
        object.__setattr__(self, "_settings", settings)
        if isinstance(params, np.ndarray) or not hasattr(params, "__iter__"):
            raise TypeError("params must be a list of NumPy arrays (not one array)")
        params = list(params)
        if not params:
            raise ValueError("params is empty: give at least one array")
        for i, param in enumerate(params):
            _check_param(param, i)
        sized = [param for param in params if param.size]
        if len(sized) > 1 and _params_overlap(sized):
            raise ValueError("two parameters share memory (the same array twice, or overlapping views); "
                             "each element must belong to one parameter")
        object.__setattr__(self, "params", tuple(params))
        object.__setattr__(self, "_orders", [_order(param) for param in params])
        object.__setattr__(self, "_flat_params", [_flat(param) for param in params])
        object.__setattr__(self, "_spans", _SortedSpans([i for i, p in enumerate(params) if p.size]))
        object.__setattr__(self, "_groups", _dtype_groups(self._flat_params))
        object.__setattr__(self, "_buffers", [None] * len(params))
        object.__setattr__(self, "steps", 0)
        object.__setattr__(self, "n_threads", resolve_threads(n_threads))

    def __reduce__(self):
        # the parameters themselves (copied by deepcopy, pickled by value): the views and
        # tables derived from them are made anew for the arrays the copy holds
        state = self.state_dict()
        return _restore, (self.params, self.convention, self.n_threads, state)

    def __getattr__(self, name):
        if name in _HYPERPARAMETERS:
            return self._settings[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name not in _HYPERPARAMETERS:
            raise AttributeError(f"{name} cannot be set; the hyperparameters can: {', '.join(_HYPERPARAMETERS)}")
        settings = {**self._settings, name: value}
        _check(settings, self.convention)
        self._settings[name] = value

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in self._settings.items())
        return f"SGD({len(self.params)} arrays, {settings}, convention={self.convention!r})"

    def step(self, grads):
        """Apply one update with `grads` (one array per parameter, of its shape).

        A gradient of another real dtype is cast to its parameter's (float64 → float32, as
        NumPy casts within a kind); complex, boolean or non-numeric ones are a TypeError. NaN
        or inf in a gradient is not checked (that would read every gradient twice): it
        reaches the parameters, as in torch.

        Every gradient is checked before any parameter changes: a bad one leaves all of them
        (and the buffers) as they were.
        """
        flat = self._flat_gradients(grads)
        s = self._settings
        # a parameter without a buffer starts one: torch's at g (u = 1·g, its first step), the
        # others' from u = 0, which is the same as u = a·g
        starting = [s["momentum"] != 0 and buffer is None for buffer in self._buffers]
        for i, param in enumerate(self._flat_params):
            if starting[i]:
                self._buffers[i] = np.empty(param.size, param.dtype)
        step = kernels("_sgd").sgd_step
        for group in self._groups:
            for first in (True, False):
                members = [i for i in group.members if starting[i] == first]
                if not members:
                    continue
                chunks = group.chunks if len(members) == len(group.members) else _chunk_table(
                    [self._flat_params[i] for i in members])
                step(group.tag, [self._flat_params[i] for i in members], [flat[i] for i in members],
                     [self._buffers[i] for i in members] if s["momentum"] != 0 else [], *chunks,
                     _step_constants(self.convention, first, **s), self.n_threads)
        object.__setattr__(self, "steps", self.steps + 1)

    def _flat_gradients(self, grads):
        if isinstance(grads, np.ndarray) or not hasattr(grads, "__iter__"):
            raise TypeError("grads must be a list of arrays, one per parameter")
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"grads has {len(grads)} gradients for {len(self.params)} parameters")
        flat = []  # contiguous 1-D gradients, kept alive until the step is done
        for i, (param, grad, order) in enumerate(zip(self.params, grads, self._orders)):
            if not param.flags.writeable:
                raise ValueError(f"parameter {i} is read-only; the optimizer updates parameters in place")
            if not isinstance(grad, np.ndarray):
                grad = np.asarray(grad)
            if grad.shape != param.shape:
                raise ValueError(f"gradient {i} has shape {grad.shape}; its parameter has shape {param.shape}")
            if grad.dtype != param.dtype:
                if grad.dtype.kind not in "fiu" or not np.can_cast(grad.dtype, param.dtype, "same_kind"):
                    raise TypeError(f"gradient {i} has dtype {grad.dtype}; its parameter has dtype {param.dtype} "
                                    f"(real gradients are cast to it, as NumPy casts within a kind)")
                grad = grad.astype(param.dtype)
            flat.append(grad.ravel(order))  # a view when it can be
        if self._spans.gradient_aliases_another_param(self._flat_params, flat):
            raise ValueError("a gradient shares memory with another parameter; the parallel update "
                             "would race: pass gradients in their own arrays")
        return flat

    def state_dict(self):
        """The hyperparameters, the step count and a copy of each momentum buffer (or None).

        Buffers are in the convention's own form (Goodfellow's m = −u); shapes as the params.
        """
        sign = -1 if self.convention == NEGATED_VELOCITY else 1
        buffers = [None if b is None else (sign * b).reshape(p.shape, order=_order(p))
                   for b, p in zip(self._buffers, self.params)]
        return {"convention": self.convention, "hyperparameters": dict(self._settings), "steps": self.steps,
                "momentum_buffers": buffers}

    def load_state_dict(self, state):
        """Restore what `state_dict` returned (the same convention and parameter shapes).

        Everything is checked before anything changes: a bad state leaves the optimizer as
        it was, with a ValueError or TypeError that says what is wrong.
        """
        keys = {"convention", "hyperparameters", "steps", "momentum_buffers"}
        if not isinstance(state, dict) or set(state) != keys:
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"a state must be a dict with the keys {sorted(keys)} (from state_dict()); got {found}")
        if state["convention"] != self.convention:
            raise ValueError(f"the state is for convention {state['convention']!r}, this optimizer uses {self.convention!r}")
        buffers = state["momentum_buffers"]
        if not isinstance(buffers, (list, tuple)):
            raise TypeError(f"the state's momentum_buffers must be a list (one array or None per parameter); "
                            f"got {type(buffers).__name__}")
        if len(buffers) != len(self.params):
            raise ValueError(f"the state has {len(buffers)} buffers for {len(self.params)} parameters")
        settings = state["hyperparameters"]
        if not isinstance(settings, dict) or set(settings) != set(_HYPERPARAMETERS):
            found = sorted(settings) if isinstance(settings, dict) else type(settings).__name__
            raise ValueError(f"the state's hyperparameters must be {list(_HYPERPARAMETERS)}; got {found}")
        settings = dict(settings)
        _check(settings, self.convention)
        steps = state["steps"]
        if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f"the state's steps must be an integer >= 0; got {steps!r}")
        sign = -1 if self.convention == NEGATED_VELOCITY else 1
        restored = []
        for i, (buffer, param) in enumerate(zip(buffers, self.params)):
            if buffer is None:
                restored.append(None)
                continue
            buffer = np.asarray(buffer)
            if buffer.shape != param.shape or buffer.dtype != param.dtype:
                raise ValueError(f"buffer {i} has shape {buffer.shape} and dtype {buffer.dtype}; "
                                 f"its parameter {param.shape} and {param.dtype}")
            if not np.all(np.isfinite(buffer)):
                raise ValueError(f"buffer {i} must be finite (a state_dict of a healthy run)")
            restored.append(np.ravel(sign * buffer, order=_order(param)).copy())
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "_buffers", restored)
        object.__setattr__(self, "steps", int(steps))


_TAGS = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}
CHUNK = 32768  # elements per parallel task


@functools.lru_cache(maxsize=64)
def _step_constants(convention, first, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """The kernel's StepConstants for one step (cached: hyperparameters change rarely).

    (a, k, e) come from the canonical update of the convention; without momentum there is no
    buffer and the step is param −= lr·g in every convention.
    """
    keras = convention == NEGATED_VELOCITY  # Keras' weight decay is decoupled
    a, k, e = (float(v) for v in canonical_coefficients(convention, lr, momentum, nesterov=nesterov,
                                                          dampening=dampening, first_step=first))
    return dict(sign=-1.0 if maximize else 1.0, decay=0.0 if keras else weight_decay,
                decoupled=lr * weight_decay if keras else 0.0, beta=momentum, a=a,
                k=k if momentum != 0 else lr, e=e, momentum=momentum != 0, first=first)


def _restore(params, convention, n_threads, state):
    optimizer = SGD(params, **state["hyperparameters"], convention=convention, n_threads=n_threads)
    optimizer.load_state_dict(state)
    return optimizer


class _Group(NamedTuple):
    # the parameters of one dtype (their indices) and their chunks, laid out once
    tag: np.ndarray  # an empty array of the dtype: picks the kernel's specialization
    members: list
    chunks: tuple  # (array, start, length) of each chunk, as int64 arrays


def _chunk_table(flat_params):
    """Chunk q covers elements start[q] to + length[q] of array array[q] (of `flat_params`)."""
    rows = [(j, lo, min(CHUNK, param.size - lo))
            for j, param in enumerate(flat_params) for lo in range(0, param.size, CHUNK)]
    return tuple(np.array(column, dtype=np.int64) for column in zip(*rows)) if rows else \
        tuple(np.zeros(0, np.int64) for _ in range(3))


def _dtype_groups(flat_params):
    groups = []
    for dtype, tag in _TAGS.items():
        members = [i for i, p in enumerate(flat_params) if p.dtype == dtype and p.size]
        if members:
            groups.append(_Group(tag, members, _chunk_table([flat_params[i] for i in members])))
    return groups


def _check_param(param, i):
    if not isinstance(param, np.ndarray):
        raise TypeError(f"params[{i}] must be a NumPy array; got {type(param).__name__}")
    if param.dtype not in _TAGS:
        raise TypeError(f"params[{i}] has dtype {param.dtype}; float32 and float64 are allowed")
    if not param.flags.writeable:
        raise ValueError(f"parameter {i} is read-only; the optimizer updates parameters in place")
    if not (param.flags.c_contiguous or param.flags.f_contiguous):
        raise ValueError(f"parameter {i} is not contiguous; the optimizer updates in place and needs C or Fortran order")


def _order(param):
    # the memory order of a contiguous parameter: its flat view, gradient and buffer follow it
    return "F" if param.flags.f_contiguous and not param.flags.c_contiguous else "C"


def _flat(param):
    # a 1-D view of a contiguous array, in its memory order (writes go to the parameter)
    return param.reshape(-1, order=_order(param))


def _spans(arrays):
    # byte intervals [start, end) of contiguous arrays, read from the arrays now
    starts = np.empty(len(arrays), np.uintp)
    kernels("_sgd").data_addresses(list(arrays), starts)
    starts = starts.astype(np.uint64)
    return starts, starts + np.array([a.nbytes for a in arrays], dtype=np.uint64)


def _params_overlap(params):
    """True when two of the (contiguous, non-empty) parameters share memory."""
    starts, ends = _spans(params)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    return bool(np.any(starts[1:] < np.maximum.accumulate(ends)[:-1]))


class _SortedSpans:
    """The parameters' byte intervals sorted by start, re-derived when their addresses change.

    The non-empty parameters do not overlap, so sorted by start their ends increase too and
    those a gradient meets are a run [lo, hi). The addresses are read from the arrays at
    every step (a copy of the optimizer holds other arrays); the sorting is kept while they
    stay the same.
    """

    def __init__(self, sized):
        self.sized = sized  # the indices of the non-empty parameters
        self.addresses = None

    def _refresh(self, params):
        starts, ends = _spans(params)
        if self.addresses is None or not np.array_equal(starts, self.addresses):
            order = np.argsort(starts, kind="stable")
            self.addresses, self.order = starts, order
            self.starts, self.ends = starts[order], ends[order]

    def gradient_aliases_another_param(self, params, grads):
        """True when some gradient shares memory with a parameter other than its own.

        A gradient may be its own parameter's memory, exactly (each element is then read and
        written in one place), not a shifted view.
        """
        self._refresh([params[i] for i in self.sized])
        g_starts, g_ends = _spans([grads[i] for i in self.sized])
        hi = np.searchsorted(self.starts, g_ends, side="left")
        lo = np.searchsorted(self.ends, g_starts, side="right")
        met = hi - lo
        for j in np.flatnonzero(met > 0):
            own = (self.order[lo[j]] == j and self.starts[lo[j]] == g_starts[j]
                   and self.ends[lo[j]] == g_ends[j])
            if met[j] > 1 or not own:  # only the parameter's own memory, exactly, is allowed
                return True
        return False
