"""The `unstable` flag of a run: whether its iteration matrix has spectral radius above 1.

With a constant learning rate every eigen-coordinate of a quadratic is multiplied at each step
by a 2×2 matrix whose characteristic polynomial μ² − Tμ + D has T and D affine in the
eigenvalue λ (:mod:`polyak.analysis`). The set of (T, D) whose roots lie within radius r is
convex (|D| ≤ r², |T| ≤ r + D/r), so the spectral radius is quasiconvex along that line and
its largest value over a spectrum is taken at the smallest or the largest eigenvalue: two
evaluations per configuration, whatever n. The eigenvalues are computed when the flag is first
read (``scipy.linalg.eigvalsh`` for a dense Q), not by the run.
"""

import numpy as np

from polyak import _closed_form
from polyak.plans import coefficient_rows_of
from polyak.reference import step_coefficients


def worst_radius(table, multiplier, smallest, largest):
    """The largest spectral radius over a spectrum in [smallest, largest] (each (B,)) of the
    configurations whose coefficient rows are `table` (B, 8), at a constant multiplier."""
    coefficients = tuple(v[:, 0] for v in step_coefficients(table.astype(np.float64), multiplier, first_step=False))
    radius = np.zeros(len(table))
    for bound in (smallest, largest):
        trace, det = _closed_form.trace_and_determinant(*coefficients, np.asarray(bound, np.float64))
        radius = np.maximum(radius, _closed_form.spectral_radius_of(trace, det))
    return radius


class Stability:
    """Computes a plan's `unstable` flags (B,) when called; picklable."""

    def __init__(self, plan, multiplier):
        self.problem, self.problem_index = plan.problem, plan.problem_index
        self.lr, self.beta, self.forms, self.multiplier = plan.lr, plan.beta, plan.forms, multiplier

    def __call__(self):
        smallest, largest = self.problem.spectrum_bounds()
        index = self.problem_index
        table = coefficient_rows_of(self.forms, self.lr, self.beta, len(index))
        return worst_radius(table, self.multiplier, smallest[index], largest[index]) > 1


def stability(plan):
    """A :class:`Stability` for a quadratic plan with a constant learning rate, else None."""
    if plan.kind == "least-squares":
        return None  # minibatch gradients: no fixed iteration matrix
    schedule = plan.schedule[: max(plan.steps, 1)]
    if not np.all(schedule == schedule[0]):
        return None
    return Stability(plan, float(schedule[0]))
