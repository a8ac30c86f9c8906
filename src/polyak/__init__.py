"""polyak: the momentum method of optimization (Polyak's heavy ball and its relatives).

Quadratic problems, update rules in every common convention, and `run`, which steps thousands
of problems at once in typed Cython + OpenMP kernels; `polyak.reference` is their NumPy twin.
`run` is `execute(plan(...))`: a `Plan` is the picklable description of what to compute,
which `execute` runs with the kernel, the reference or the closed form, whole or in pieces.

>>> import polyak
>>> problem = polyak.problems.ill_conditioned_2d()
>>> result = polyak.run(problem, polyak.Momentum(lr=0.6, beta=0.5), x0=[-5.0, -2.0], steps=20)
>>> [round(float(v), 6) for v in result.x]
[0.007188, 0.002553]
"""

from polyak import analysis, data, nqm, optim, problems, reference, rules, schedules, train
from polyak._config import __version__, show_config
from polyak.execution import execute
from polyak.plans import Plan, plan
from polyak.problems import Quadratic
from polyak.results import Result
from polyak.rules import GD, Momentum
from polyak.solve import run
from polyak.sweeps import SweepResult, load_sweep, sweep

__all__ = [
    "GD",
    "Momentum",
    "Plan",
    "Quadratic",
    "Result",
    "SweepResult",
    "__version__",
    "analysis",
    "data",
    "execute",
    "optim",
    "plan",
    "problems",
    "nqm",
    "reference",
    "rules",
    "run",
    "schedules",
    "show_config",
    "sweep",
    "load_sweep",
    "train",
]
