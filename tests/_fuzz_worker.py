"""The subprocess of test_fuzz.py: runs the public API calls it is sent, one at a time.

Protocol (binary stdin/stdout): each message is an 8-byte little-endian length and a pickle.
The parent sends (target, args, kwargs); the worker answers one of
    ("ok", problems)                 the call returned; `problems` lists NaN in its outputs
    ("raised", type name, message)   the call raised
plus whether it changed any of its inputs. A crash or a hang is seen by the parent (which
kills the worker after a timeout and starts another).
"""

import copy
import importlib
import pickle
import struct
import sys

import numpy as np

import polyak


def _resolve(target):
    if target == "SGD.step":
        return _sgd_step
    if target == "SGD.load_state_dict":
        return _sgd_load
    module, _, name = target.rpartition(".")
    value = importlib.import_module(module.split(".")[0])
    for part in module.split(".")[1:] + [name]:
        value = getattr(value, part)
    return value


def _own(params):
    # the optimizer updates its parameters in place (by design): give it copies, so that the
    # check that inputs stay unchanged applies to everything else
    return [p.copy() if isinstance(p, np.ndarray) else p for p in params] if isinstance(params, list) else params


def _sgd_step(params, grads, **hyperparameters):
    params = _own(params)
    optimizer = polyak.optim.SGD(params, **hyperparameters)
    optimizer.step(grads)
    optimizer.step(grads)
    # not returned: a step overflows the parameters where torch's would (huge lr, say)


def _sgd_load(params, state):
    params = _own(params)
    optimizer = polyak.optim.SGD(params, lr=0.1, momentum=0.9)
    optimizer.step([np.ones_like(p) for p in params])
    before = optimizer.state_dict()
    try:
        optimizer.load_state_dict(state)
    except Exception:
        after = optimizer.state_dict()
        same = after["steps"] == before["steps"] and all(
            (a is None and b is None) or np.array_equal(a, b)
            for a, b in zip(after["momentum_buffers"], before["momentum_buffers"]))
        if not same:
            raise AssertionError("load_state_dict changed the optimizer before it raised") from None
        raise
    return params


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    try:
        return bool(a == b) if type(a) in (int, float, str, bool, complex, type(None)) else True
    except Exception:
        return True


def _nan_in(value, where="result"):
    """Paths of NaN found in a result (NaN records after a stop are by design: skipped)."""
    if isinstance(value, polyak.Result):
        found = []
        for name in ("x", "velocity", "diverged_at", "steps_taken"):
            found += _nan_in(getattr(value, name), f"{where}.{name}")
        if not np.all(np.abs(np.asarray(value.x, dtype=float)) <= 1e300):
            found.append(f"{where}.x beyond the divergence bound")
        return found
    if isinstance(value, (tuple, list)):
        return [path for i, item in enumerate(value) for path in _nan_in(item, f"{where}[{i}]")]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" or isinstance(value, float):
        return [where] if np.any(np.isnan(value)) else []
    return []


def _serve():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return
        (size,) = struct.unpack("<Q", header)
        target, args, kwargs = pickle.loads(stdin.read(size))
        kept = copy.deepcopy((args, kwargs))
        try:
            outcome = ("ok", _nan_in(_resolve(target)(*args, **kwargs)))
        except Exception as error:  # noqa: BLE001 -- classified by the parent
            outcome = ("raised", type(error).__name__, str(error))
        changed = not _same(kept, (args, kwargs))
        message = pickle.dumps((outcome, changed))
        stdout.write(struct.pack("<Q", len(message)) + message)
        stdout.flush()


if __name__ == "__main__":
    _serve()
