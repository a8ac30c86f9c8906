"""Checks of scalar arguments shared by the optimizer and the schedules: one wording for errors."""

import math
import numbers

import numpy as np


def real_number(value, name, *, low=None, high=None, low_open=False):
    """`value` as a float, or TypeError/ValueError naming `name`.

    A finite real number (not a bool) in [low, high] (each bound optional; ``low_open``
    excludes low), e.g. ``real_number(gamma, "gamma", low=0)``.
    """
    if type(value) is not float and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}; got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}; got {value:g}")
    return value


def flag(value, name):
    """`value` as a bool, or TypeError unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)
