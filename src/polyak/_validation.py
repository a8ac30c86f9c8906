"""Input checks shared by the API: one place for what is allowed, one wording for errors."""

import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_real_array(value, name):
    """`value` as a NumPy array of float32 or float64, without copying what already is one.

    Integers become float64; booleans, complex numbers, strings and objects are a TypeError.
    The result may share memory with `value`: callers copy before writing.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array of real numbers; got {type(value).__name__}") from error
    kind = array.dtype.kind
    if kind in "iu":
        return array.astype(np.float64)
    if kind == "f":
        if array.dtype in FLOAT_DTYPES:
            return array
        return array.astype(np.float64)
    if kind == "c":
        raise TypeError(f"{name} must be real; got a complex array (dtype {array.dtype})")
    raise TypeError(
        f"{name} must be an array of real numbers (int, float32 or float64); got dtype {array.dtype}"
    )


def require_finite(array, name):
    """ValueError naming the first NaN or infinity in `array`."""
    if not np.all(np.isfinite(array)):
        where = np.argwhere(~np.isfinite(array))[0]
        index = tuple(int(i) for i in where) if array.ndim else ()
        bad = array[index] if array.ndim else array[()]
        raise ValueError(f"{name} must be finite; got {bad} at index {index}")
    return array


def finite_real_array(value, name):
    """`as_real_array` followed by `require_finite`."""
    return require_finite(as_real_array(value, name), name)


def require_shape(array, shapes, name):
    """ValueError unless ``array.shape`` is one of `shapes` (tuples; a description is shown)."""
    if array.shape not in shapes:
        allowed = " or ".join(str(shape) for shape in shapes)
        raise ValueError(f"{name} must have shape {allowed}; got {array.shape}")
    return array


def as_int(value, name, *, minimum, maximum=2**62):
    """`value` as a Python int in [minimum, maximum]; TypeError for non-integers (bool, float)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def resolve_dtype(dtype, *arrays, allowed=FLOAT_DTYPES):
    """The float dtype of a computation: `dtype` if given, else float32 when every array is."""
    if dtype is not None:
        names = " or ".join(str(d) for d in allowed)
        try:
            resolved = np.dtype(dtype)
        except TypeError as error:
            raise TypeError(f"dtype must be {names}; got {dtype!r}") from error
        if resolved not in allowed:
            raise TypeError(f"dtype must be {names}; got {resolved}")
        return resolved
    present = [array.dtype for array in arrays if array is not None]
    if present and all(d == np.float32 for d in present):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def read_only(array):
    """A read-only view, so that immutable objects stay immutable."""
    view = array.view()
    view.flags.writeable = False
    return view
