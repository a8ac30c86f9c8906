"""The saved state of :class:`polyak.optim.SGD`: torch's layout, written and read back.

``state_dict()`` writes torch's ``{"state": {i: {"momentum_buffer": array}}, "param_groups":
[{..., "params": [i, ...]}]}`` (parameters numbered in the order of the groups, only those
with a buffer in "state"), which ``torch.optim.SGD.load_state_dict`` reads once the arrays
are tensors, and two keys torch ignores: ``"convention"`` and ``"steps"``. It also writes
the layout of earlier polyak versions, a view of the same buffers: ``"momentum_buffers"``
(one array or None per parameter, in that order) and, with one group, ``"hyperparameters"``.

``load_state_dict`` reads any of them: torch's (a state of ``torch.optim.SGD``, its tensors
turned into arrays or left as CPU tensors; without "convention" a state is torch's),
polyak's earlier one, or both at once, which must then agree.
"""

import numbers

import numpy as np

from polyak._optim_groups import HYPERPARAMETERS, TORCH_ONLY_KEYS, check_group_values
from polyak._optim_layout import order
from polyak._validation import as_real_array
from polyak.rules import NEGATED_VELOCITY

_TORCH_KEYS = ("state", "param_groups")
_LEGACY_KEYS = ("momentum_buffers", "hyperparameters")
_OWN_KEYS = ("convention", "steps")
_PARAM_STATE_KEYS = ("momentum_buffer",)


def _sign(convention):
    # the saved buffer is the convention's own velocity: Goodfellow's m = −u
    return -1.0 if convention == NEGATED_VELOCITY else 1.0


def make_state(params, groups, buffers, convention, steps):
    """The state dict of an optimizer (buffers: its flat canonical u per parameter, or None)."""
    sign = _sign(convention)
    saved = [None if b is None else (sign * b).reshape(p.shape, order=order(p)) for b, p in zip(buffers, params)]
    packed, start = [], 0
    for group in groups:
        size = len(group["params"])
        packed.append({**{k: v for k, v in group.items() if k != "params"}, "params": list(range(start, start + size))})
        start += size
    state = {"state": {i: {"momentum_buffer": b} for i, b in enumerate(saved) if b is not None},
             "param_groups": packed, "convention": convention, "steps": steps, "momentum_buffers": saved}
    if len(groups) == 1:
        state["hyperparameters"] = {name: groups[0][name] for name in HYPERPARAMETERS}
    return state


def read_state(state, params, groups, convention):
    """(group values without params, flat canonical buffers, steps) of `state`, all checked.

    Nothing of the optimizer changes here: a bad state is a ValueError or TypeError that
    says what is wrong, before the caller commits anything.
    """
    if not isinstance(state, dict):
        raise TypeError(f"a state must be a dict (from state_dict(), or torch's); got {type(state).__name__}")
    allowed = _TORCH_KEYS + _LEGACY_KEYS + _OWN_KEYS
    unknown = sorted(str(key) for key in state if key not in allowed)
    if unknown:
        raise ValueError(f"a state has the keys {list(allowed)} (from state_dict(), or torch's 'state' and "
                         f"'param_groups'); got unknown {unknown}")
    torch_form = [key in state for key in _TORCH_KEYS]
    if any(torch_form) and not all(torch_form):
        raise ValueError("a state in torch's layout needs both 'state' and 'param_groups'")
    if not all(torch_form) and not all(key in state for key in _LEGACY_KEYS):
        raise ValueError(f"a state needs 'state' and 'param_groups' (torch's layout, from state_dict()); "
                         f"got the keys {sorted(str(key) for key in state)}")
    saved = state.get("convention", "torch")
    if saved != convention:
        raise ValueError(f"the state is for convention {saved!r} (a state without one is torch's), "
                         f"this optimizer uses {convention!r}")
    steps = state.get("steps", 0)
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"the state's steps must be an integer >= 0; got {steps!r}")
    reader = _Reader(params, convention)
    values = buffers = None
    if all(torch_form):
        values, positions = _torch_groups(state["param_groups"], groups, convention)
        buffers = reader.torch_buffers(state["state"], positions)
    if "momentum_buffers" in state and not (buffers is not None and _views_of_one_state(state)):
        legacy = reader.listed_buffers(state["momentum_buffers"])
        if buffers is not None and not _same_buffers(buffers, legacy):
            raise ValueError("the state's 'momentum_buffers' and its 'state' hold different buffers; "
                             "pass one of them")
        buffers = legacy
    if "hyperparameters" in state:
        shared = _legacy_hyperparameters(state["hyperparameters"], groups, convention)
        if values is not None and any(shared != {k: v[k] for k in HYPERPARAMETERS} for v in values):
            raise ValueError("the state's 'hyperparameters' and its 'param_groups' differ; pass one of them")
        if values is None:
            values = [{**{k: v for k, v in groups[0].items() if k != "params"}, **shared}]
    return values, buffers, int(steps)


def _torch_groups(saved, groups, convention):
    """Each saved group's values, checked (torch's own keys dropped, its defaults filled in), and
    the position among the parameters of each saved index, as torch pairs them: in order."""
    if not isinstance(saved, (list, tuple)) or not all(isinstance(group, dict) for group in saved):
        raise TypeError(f"the state's param_groups must be a list of dicts; got {type(saved).__name__}")
    if len(saved) != len(groups):
        raise ValueError(f"the state has {len(saved)} parameter groups; this optimizer has {len(groups)}")
    values, positions = [], {}
    for index, (group, mine) in enumerate(zip(saved, groups)):
        where = f"the state's param_groups[{index}]: "
        ids = group.get("params")
        size = len(mine["params"])
        if not isinstance(ids, (list, tuple)) or len(ids) != size:
            found = len(ids) if isinstance(ids, (list, tuple)) else repr(ids)
            raise ValueError(f"{where}params must list the indices of its {size} parameters; got {found}")
        if any(isinstance(i, bool) or not isinstance(i, numbers.Integral) or i in positions for i in ids):
            raise ValueError(f"{where}params must be distinct integer indices; got {list(ids)}")
        positions.update((i, len(positions)) for i in ids)
        kept = {k: v for k, v in group.items() if k != "params" and k not in TORCH_ONLY_KEYS}
        kept = {"nesterov": False, "maximize": False, **kept}  # as torch's SGD fills states of older versions
        check_group_values(kept, convention, where)
        values.append(kept)
    return values, positions


def _legacy_hyperparameters(settings, groups, convention):
    if not isinstance(settings, dict) or set(settings) != set(HYPERPARAMETERS):
        found = sorted(settings) if isinstance(settings, dict) else type(settings).__name__
        raise ValueError(f"the state's hyperparameters must be {list(HYPERPARAMETERS)}; got {found}")
    if len(groups) != 1:
        raise ValueError(f"a state with one set of hyperparameters fits an optimizer with one parameter group; "
                         f"this one has {len(groups)}")
    check_group_values(dict(settings), convention, "the state's hyperparameters: ")
    return dict(settings)


def _views_of_one_state(state):
    """True when 'momentum_buffers' lists the very arrays of 'state' (as state_dict() writes them)."""
    listed, per_param = state["momentum_buffers"], state["state"]
    if not isinstance(listed, (list, tuple)) or not isinstance(per_param, dict):
        return False
    entries = [per_param.get(i) for i in range(len(listed))]
    return len(per_param) == sum(b is not None for b in listed) and all(
        (buffer is None and entry is None) or (isinstance(entry, dict) and entry.get("momentum_buffer") is buffer)
        for buffer, entry in zip(listed, entries))


def _same_buffers(first, second):
    return all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
               for a, b in zip(first, second))


class _Reader:
    """Turns saved buffers (arrays, or anything NumPy reads as one) into flat canonical ones."""

    def __init__(self, params, convention):
        self.params, self.sign = params, _sign(convention)

    def listed_buffers(self, buffers):
        """polyak's earlier layout: one array or None per parameter."""
        if not isinstance(buffers, (list, tuple)):
            raise TypeError(f"the state's momentum_buffers must be a list (one array or None per parameter); "
                            f"got {type(buffers).__name__}")
        if len(buffers) != len(self.params):
            raise ValueError(f"the state has {len(buffers)} buffers for {len(self.params)} parameters")
        return [self._buffer(buffer, i) for i, buffer in enumerate(buffers)]

    def torch_buffers(self, per_param, positions):
        """torch's layout: {index: {"momentum_buffer": buffer}} for the parameters with one;
        `positions` maps the indices the groups list to the parameters'."""
        if not isinstance(per_param, dict):
            raise TypeError(f"the state's 'state' must be a dict of parameter index to its state; "
                            f"got {type(per_param).__name__}")
        buffers = [None] * len(self.params)
        for index, entry in per_param.items():
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral) or index not in positions:
                raise ValueError(f"the state's 'state' has an entry for parameter {index!r}, which no group "
                                 f"of its param_groups lists")
            if not isinstance(entry, dict) or not set(entry) <= set(_PARAM_STATE_KEYS):
                found = sorted(map(str, entry)) if isinstance(entry, dict) else type(entry).__name__
                raise ValueError(f"the state of parameter {index} must be a dict with {list(_PARAM_STATE_KEYS)}; "
                                 f"got {found}")
            buffers[positions[index]] = self._buffer(entry.get("momentum_buffer"), positions[index])
        return buffers

    def _buffer(self, buffer, i):
        if buffer is None:
            return None
        param = self.params[i]
        array = as_real_array(buffer, f"buffer {i}")
        if array.shape != param.shape:
            raise ValueError(f"buffer {i} has shape {array.shape}; its parameter {param.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"buffer {i} must be finite (a state_dict of a healthy run)")
        return np.ravel(self.sign * array.astype(param.dtype), order=order(param))
