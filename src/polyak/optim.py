"""`SGD`: an optimizer step over NumPy arrays with PyTorch's `torch.optim.SGD` algorithm.

With convention "torch" (the default) one step does, for each parameter p with gradient g,
with the hyperparameters of p's parameter group as they are at that step::

    g ← −g                           if maximize
    g ← g + weight_decay · p         if weight_decay ≠ 0
    if momentum ≠ 0:
        b ← g                        on p's first step with momentum (no buffer yet: no dampening)
        b ← momentum · b + (1 − dampening) · g       afterwards
        g ← g + momentum · b         if nesterov, else g ← b
    p ← p − lr · g

The other conventions (see polyak.rules): "d2l" v ← μv + g, p ← p − lr·v (nesterov: PyTorch's
form); "mxnet" v ← μv + lr·g, p ← p − v; "goodfellow"/"keras" m ← μm − lr·g, p ← p + m
(nesterov: p ← p + μm − lr·g) with Keras' decoupled weight decay p ← p − lr·weight_decay·p
before the step. "d2l" and "mxnet" add weight decay to the gradient, as "torch" does.

Parameter groups are torch's: ``SGD([{"params": weights, "weight_decay": 1e-4}, {"params":
biases, "lr": 0.01}], lr=0.1, momentum=0.9)``; a group's missing hyperparameters come from the
constructor's arguments (``defaults``); ``param_groups`` is the list of the group dicts, and a
value changed in one between steps (by hand or by a scheduler of :mod:`polyak.schedules`) is
checked and used at the next step. A gradient of None leaves its parameter and buffer as
they are, as torch does for a parameter without ``.grad``.

Each step is one fused pass over all arrays of a dtype, all groups together (typed Cython,
one parallel loop over fixed chunks, each chunk reading its group's row of a small table of
constants), with no temporaries; the coefficients of each convention come from
:func:`polyak.rules.canonical_coefficients`, and the fused arithmetic (FMAs,
p − (lr·μ)b − lr·g for nesterov) equals PyTorch's within rounding, not bit for bit. NaN or
infinite gradients are not checked: they propagate into the parameters and buffers as in
PyTorch. Parameters may not share memory, nor a gradient with another parameter (the
parallel update would race).

The optimizer holds its parameter arrays, never their addresses: a copy (``copy.deepcopy``)
or an unpickled optimizer updates its own arrays. ``state_dict`` is torch's layout (see
:mod:`polyak._optim_state`).
"""

import operator

import numpy as np

from polyak import _optim_layout as layout
from polyak._config import kernels, resolve_threads
from polyak._optim_groups import (GROUP_KEYS, HYPERPARAMETERS, check_group_values, check_hyperparameters, group_list,
                                  hyperparameter_values, kernel_rows, new_group)
from polyak._optim_state import make_state, read_state
from polyak.rules import resolve_convention

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent with momentum over NumPy arrays, updated in place.

    Parameters
    ----------
    params : list of ndarray, or list of dict
        float32 or float64 arrays, writeable and contiguous (C or Fortran order), or parameter
        groups: dicts with "params" (a list of such arrays) and any of the hyperparameters
        below, as in ``torch.optim.SGD``. An array may be in one group only.
    lr, momentum, dampening, weight_decay : float
        The defaults of the groups, as in ``torch.optim.SGD`` (lr, momentum, weight_decay
        >= 0; lr 1e-3 unless given); dampening only with convention "torch".
    nesterov, maximize : bool
        As in ``torch.optim.SGD``.
    convention : str
        "torch" (default), "d2l", "mxnet", "goodfellow" or "keras"; see the module docstring.
    n_threads : int, optional
        Threads for large arrays; the OpenMP default when None.

    Attributes
    ----------
    param_groups : list of dict
        The groups, torch's way: edit a value between steps and the next step uses it.
    defaults : dict
        The hyperparameters a group added without them gets.
    params : tuple of ndarray
        Every parameter, in the order of the groups (the order of ``step``'s gradients and of
        the indices in ``state_dict``).
    steps : int
        Steps taken.

    ``optimizer.lr`` (and the other hyperparameters) reads the value all groups share, and
    an assignment sets it in every group; a group's own value is ``param_groups[i]["lr"]``.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 *, maximize=False, convention="torch", n_threads=None):
        convention = resolve_convention(convention)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        check_hyperparameters(defaults, convention)
        self._set(convention=convention, defaults=defaults, param_groups=[], params=(), _buffers=[], steps=0,
                  n_threads=resolve_threads(n_threads))
        self._add_groups(group_list(params))

    def _set(self, **attributes):
        for name, value in attributes.items():
            object.__setattr__(self, name, value)

    def add_param_group(self, param_group):
        """Add a group (a dict with "params"), as ``torch.optim.Optimizer.add_param_group``.

        Its missing hyperparameters come from ``defaults``; its arrays may not be in another
        group, nor share memory with another parameter. A bad group changes nothing.
        """
        self._add_groups([param_group])

    def _add_groups(self, raws):
        start = len(self.param_groups)
        groups = [new_group(raw, self.defaults, self.convention, index) for index, raw in enumerate(raws, start)]
        owner = {id(p): g for g, group in enumerate(self.param_groups) for p in group["params"]}
        params = list(self.params)
        for g, group in enumerate(groups, start):
            for j, param in enumerate(group["params"]):
                layout.check_param(param, f"param_groups[{g}]['params'][{j}]")
                if id(param) in owner:
                    where = "twice" if owner[id(param)] == g else f"and in param_groups[{owner[id(param)]}]"
                    raise ValueError(f"param_groups[{g}]['params'][{j}] is in param_groups[{g}] {where}: an array "
                                     f"may be in one group, once (two parameters may not share memory)")
                owner[id(param)] = g
                params.append(param)
        sized = [param for param in params if param.size]
        if len(sized) > 1 and layout.params_overlap(sized):
            raise ValueError("two parameters share memory (overlapping views of one array); "
                             "each element must belong to one parameter")
        self.param_groups.extend(groups)
        self._set(params=tuple(params), _buffers=self._buffers + [None] * (len(params) - len(self.params)))
        self._derive()

    def _derive(self):
        """What the step needs, from the groups' arrays: views, chunk tables, snapshots."""
        params = self.params
        group_of = [g for g, group in enumerate(self.param_groups) for _ in group["params"]]
        flat = [layout.flat(param) for param in params]
        self._set(_orders=[layout.order(param) for param in params], _flat=flat, _group_of=np.array(group_of, np.int64),
                  _layouts=layout.layouts(flat, group_of),
                  _spans=layout.SortedSpans([i for i, param in enumerate(params) if param.size]),
                  _table=np.zeros((2 * len(self.param_groups), len(kernels("_sgd").COLUMN_NAMES))),
                  _values_seen=[None] * len(self.param_groups), _momentum_on=[False] * len(self.param_groups),
                  _params_seen=[(group["params"], list(group["params"])) for group in self.param_groups],
                  _unbuffered={i for i, buffer in enumerate(self._buffers) if buffer is None})

    def __reduce__(self):
        # the parameters themselves (copied by deepcopy, pickled by value): the views and
        # tables derived from them are made anew for the arrays the copy holds
        return _restore, ([group["params"] for group in self.param_groups], self.defaults, self.convention,
                          self.n_threads, self.state_dict())

    def __getattr__(self, name):
        if name in HYPERPARAMETERS and "param_groups" in self.__dict__:
            values = [group.get(name) for group in self.param_groups]
            if any(value != values[0] for value in values):
                raise ValueError(f"the parameter groups have different {name} ({values}): read "
                                 f"optimizer.param_groups[i][{name!r}]")
            return values[0]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name not in HYPERPARAMETERS:
            raise AttributeError(f"{name} cannot be set; the hyperparameters can (in every group): "
                                 f"{', '.join(HYPERPARAMETERS)}")
        for g, group in enumerate(self.param_groups):  # every group checked before any changes
            check_hyperparameters({**group, name: value}, self.convention, f"param_groups[{g}]: ")
        for group in self.param_groups:
            group[name] = value

    def __repr__(self):
        groups = [", ".join(f"{k}={group[k]}" for k in HYPERPARAMETERS if k in group) for group in self.param_groups]
        return (f"SGD({len(self.params)} arrays, " + "; ".join(f"group {g}: {text}" for g, text in enumerate(groups))
                + f", convention={self.convention!r})")

    def step(self, grads):
        """Apply one update with `grads`: one array (or None) per parameter, in ``params`` order.

        A gradient of another real dtype is cast to its parameter's (float64 → float32, as
        NumPy casts within a kind); complex, boolean or non-numeric ones are a TypeError. NaN
        or inf in a gradient is not checked (that would read every gradient twice): it
        reaches the parameters, as in torch. None skips the parameter (torch's grad None).

        Every gradient and every group's values are checked before any parameter changes: a
        bad one leaves all of them (and the buffers) as they were.
        """
        flat = self._flat_gradients(grads)
        self._refresh_groups()
        starting = [i for i in self._unbuffered if flat[i] is not None and self._momentum_on[self._group_of[i]]] \
            if self._unbuffered and any(self._momentum_on) else []
        # a parameter without a buffer starts one: torch's at g (u = 1·g, its first step), the
        # others' from u = 0, which is the same as u = a·g
        for i in starting:
            self._buffers[i] = np.empty(self.params[i].size, self.params[i].dtype)
            self._unbuffered.discard(i)
        step = kernels("_sgd").sgd_step
        present = np.array([grad is not None for grad in flat]) if any(grad is None for grad in flat) else None
        if starting:
            first = np.zeros(len(self.params), np.int64)
            first[starting] = 1  # their chunks take their group's other row: a buffer's first step
        for part in self._layouts:
            chunks = part.chunks
            if starting:
                chunks = chunks._replace(row=chunks.row + first[chunks.param])
            if present is not None:
                chunks = chunks.where(present[chunks.param])
            if not chunks.array.size:
                continue
            step(part.tag, part.flat, [part.tag if flat[i] is None else flat[i] for i in part.members],
                 [part.tag if self._buffers[i] is None else self._buffers[i] for i in part.members],
                 chunks.array, chunks.start, chunks.length, chunks.row, self._table, self.n_threads)
        self._set(steps=self.steps + 1)

    def _refresh_groups(self):
        """Check each group that changed since the last step and update its rows of constants."""
        for g, group in enumerate(self.param_groups):
            params, members = self._params_seen[g]
            current = group.get("params")
            if current is not params or len(current) != len(members) or not all(map(operator.is_, current, members)):
                raise ValueError(f"param_groups[{g}]['params'] changed after the group was added: the optimizer "
                                 f"keeps its parameters (their buffers and layout); add arrays with add_param_group")
            try:
                same = group.keys() <= GROUP_KEYS and hyperparameter_values(group) == self._values_seen[g]
            except (KeyError, TypeError, ValueError):  # a value gone, or one that compares elementwise
                same = False
            if not same:
                check_group_values(group, self.convention, f"param_groups[{g}]: ")
                values = hyperparameter_values(group)
                self._table[2 * g: 2 * g + 2] = kernel_rows(self.convention, *values)
                self._values_seen[g] = values
                self._momentum_on[g] = values[1] != 0

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
            if grad is None:
                flat.append(None)
                continue
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
        if self._spans.gradient_aliases_another_param(self._flat, flat):
            raise ValueError("a gradient shares memory with another parameter; the parallel update "
                             "would race: pass gradients in their own arrays")
        return flat

    def state_dict(self):
        """The state in torch's layout: per-parameter momentum buffers (copies) and the groups.

        ``{"state": {i: {"momentum_buffer": array}}, "param_groups": [{..., "params": [i, ...]}],
        "convention": ..., "steps": ...}`` plus the earlier layout's "momentum_buffers" (one
        array or None per parameter: the same arrays) and, with one group, "hyperparameters".
        Parameters are numbered in ``params`` order; buffers have their parameters' shapes and
        are in the convention's own form (Goodfellow's m = −u). With the arrays made tensors
        (``torch.from_numpy``), ``torch.optim.SGD.load_state_dict`` reads it.
        """
        return make_state(self.params, self.param_groups, self._buffers, self.convention, self.steps)

    def load_state_dict(self, state):
        """Restore a state: this optimizer's (``state_dict()``), or ``torch.optim.SGD``'s.

        The groups must have as many parameters as the state's, with the same shapes; the
        groups' values (hyperparameters, a scheduler's keys) are replaced by the state's, and
        a buffer of another float dtype is cast to its parameter's, as torch does. A state
        without "convention" is torch's; without "steps", steps is 0. Everything is checked
        before anything changes: a bad state leaves the optimizer as it was, with a ValueError
        or TypeError that says what is wrong.
        """
        values, buffers, steps = read_state(state, self.params, self.param_groups, self.convention)
        for group, saved in zip(self.param_groups, values):
            params = group["params"]
            group.clear()
            group.update(saved, params=params)
        self._set(_buffers=buffers, steps=steps)
        self._derive()


def _restore(param_lists, defaults, convention, n_threads, state):
    optimizer = SGD([{"params": params} for params in param_lists], **defaults, convention=convention,
                    n_threads=n_threads)
    optimizer.load_state_dict(state)
    return optimizer
