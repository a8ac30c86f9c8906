import os

import numpy as np
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=150)
settings.register_profile("stress", parent=settings.get_profile("default"), max_examples=3000)
# HYPOTHESIS_PROFILE=stress for a long search; CI (which sets CI=true) searches more than a quick local run
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default"))


def literal_run(convention, lam, c, x0, lrs, beta, *, nesterov=False, dampening=0.0, v0=None):
    """The update conventions written out literally, one step at a time (DESIGN.md's table).

    Independent of polyak's canonical form: `lrs` holds ηₜ for t = 1..T. Returns the final
    x and velocity in the convention's own form.
    """
    x = np.array(x0, dtype=np.float64)
    v = np.zeros_like(x) if v0 is None else np.array(v0, dtype=np.float64)
    have_buffer = v0 is not None
    for eta in lrs:
        g = lam * x + c
        if convention == "d2l":
            v = beta * v + g
            x = x - eta * (g + beta * v) if nesterov else x - eta * v
        elif convention == "torch":
            v = beta * v + (1 - dampening) * g if have_buffer else g.copy()
            have_buffer = True
            x = x - eta * (g + beta * v if nesterov else v)
        elif convention == "mxnet":
            v = beta * v + eta * g
            x = x - v
        elif convention == "goodfellow":
            v = beta * v - eta * g
            x = x + beta * v - eta * g if nesterov else x + v
        else:
            raise ValueError(convention)
    return x, v
