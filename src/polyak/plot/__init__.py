"""Figures of the momentum method with matplotlib: paths, loss curves, rate and regime maps,
sweeps, the noisy quadratic model (the optional extra ``polyak[plot]``).

``import polyak`` does not import this module, nor matplotlib; ``import polyak.plot`` does, and
without matplotlib it is an ImportError naming the extra. Every function draws from polyak's
own results or computes them from its arguments, takes ``ax=`` (a matplotlib Axes; by default
a new figure through pyplot), returns the Axes it drew on, and never calls ``plt.show()``.
The docstrings give the formula each figure shows. ``polyak tour`` draws them all.

>>> import polyak, polyak.plot
>>> problem = polyak.problems.ill_conditioned_2d()
>>> run = polyak.run(problem, polyak.Momentum(0.6, 0.5), [-5.0, -2.0], 20, record="trajectory")
>>> ax = polyak.plot.trace_2d(problem, run, labels=["momentum, lr 0.6, beta 0.5"])
"""

try:
    import matplotlib  # noqa: F401 -- checked here, so that every function can rely on it
except ImportError as error:
    raise ImportError("polyak.plot needs matplotlib, which the optional extra installs: "
                      "pip install 'polyak[plot]'") from error

from polyak.plot._nqm import nqm_loss, nqm_steps
from polyak.plot._paths import coordinates, effective_weights, loss_curves, step_lengths, trace_2d
from polyak.plot._physics import friction, particle, terminal_velocity
from polyak.plot._sweep import sweep_map
from polyak.plot._theory import rate_curves, rate_map, regime_map

__all__ = [
    "coordinates",
    "effective_weights",
    "friction",
    "loss_curves",
    "nqm_loss",
    "nqm_steps",
    "particle",
    "rate_curves",
    "rate_map",
    "regime_map",
    "step_lengths",
    "sweep_map",
    "terminal_velocity",
    "trace_2d",
]
