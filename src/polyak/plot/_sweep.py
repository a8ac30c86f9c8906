"""A sweep's metric over its two axes, with the theory's optimum and the sweep's best."""

import numpy as np

from polyak import analysis
from polyak.plot._style import axes, cmap, heat_map, mark, plain_log_ticks

#: The colors of cells that never reached the tolerance, and of unstable ones.
NEVER, UNSTABLE = "#D9D9D9", "#7F7F7F"
#: Colorbar labels of the metrics.
METRIC_LABELS = {
    "steps_to_tol": "steps to $f - f^* ≤$ tol",
    "final_loss": "$f(x_T) - f^*$",
    "rate": "rate (worst spectral radius)",
}


def sweep_map(result, metric="steps_to_tol", *, ax=None, theory=True):
    """Any metric of a :class:`polyak.SweepResult` over its two axes, as a heat map.

    Cells where the metric is undefined are gray: light where the tolerance was never reached
    (steps_to_tol = −1) or the loss is not finite, dark where the configuration diverged or
    its rate is ≥ 1. An axis whose values are geometric gets a log
    scale. Marked: the sweep's best configuration for the metric (``result.best(metric)``),
    and, for a sweep over (lr, β), the theory's optimum for the spectrum's extremes [μ, L],
    η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))² (:func:`polyak.analysis.optimal_parameters`;
    Nesterov's when the sweep is).

    Parameters
    ----------
    result : SweepResult
        A grid with exactly two axes of more than one value (the others of one value).
    metric : "steps_to_tol", "final_loss" or "rate"
    theory : bool
        Mark the theory's optimum (when the axes are lr and beta and the spectrum is known).

    Returns
    -------
    matplotlib Axes
        Its first QuadMesh holds the metric, masked where undefined, (len(second axis),
        len(first)); the second masks all but the unstable cells.
    """
    from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(METRIC_LABELS)}; got {metric!r}")
    values = getattr(result, metric)
    if values is None:
        raise ValueError(f"this sweep has no {metric}" + (" (run it with tol=)" if metric == "steps_to_tol" else ""))
    dims = [dim for dim, size in zip(result.dims, result.shape) if size > 1]
    if len(dims) != 2 or "config" in result.dims:
        raise ValueError(f"sweep_map draws a grid of two axes with more than one value; this sweep has {dims}")
    keep = tuple(slice(None) if size > 1 else 0 for size in result.shape)
    values = np.asarray(values)[keep]
    unstable = np.asarray(result.diverged)[keep]
    if result.rate is not None:
        unstable = unstable | (np.asarray(result.rate)[keep] >= 1)
    bad = unstable | ~np.isfinite(values) | ((values < 0) if metric == "steps_to_tol" else False)
    shown = np.ma.masked_array(np.asarray(values, dtype=np.float64), mask=bad).T
    x, y = (np.asarray(result.coords[dim], dtype=np.float64) for dim in dims)
    ax = axes(ax)
    good = shown.compressed()
    positive = good[good > 0]
    if metric == "rate" or positive.size == 0:
        norm = Normalize()
    else:
        norm = LogNorm(vmin=positive.min(), vmax=positive.max())
    mesh = heat_map(ax, x, y, shown, cmap=cmap("viridis", under="#440154", bad=NEVER), norm=norm)
    mesh.set_gid(metric)
    overlay = heat_map(ax, x, y, np.ma.masked_array(np.zeros(shown.shape), mask=~unstable.T),
                       cmap=ListedColormap([UNSTABLE]))
    overlay.set_gid("unstable")
    tol = f" {_power(result.tol)}" if metric == "steps_to_tol" and result.tol is not None else ""
    bar = ax.figure.colorbar(mesh, ax=ax, label=METRIC_LABELS[metric].replace(" tol", tol))
    if isinstance(norm, LogNorm) and norm.vmax / norm.vmin < 1e3:
        plain_log_ticks(bar.ax, "y")
    best = result.best(metric)
    if best is not None:
        mark(ax, best[dims[0]], best[dims[1]], f"sweep's best: {dims[0]} {best[dims[0]]:.3g}, {dims[1]} "
             f"{best[dims[1]]:.3g} ({_short(best[metric])})", marker="X", color="#D55E00", size=11, gid="best")
    if theory and dims == ["lr", "beta"] and result.spectrum is not None:
        method = "nesterov" if result.constants.get("nesterov") else "heavy_ball"
        lr, beta, rate = analysis.optimal_parameters(*result.spectrum, method)
        mark(ax, lr, beta, f"theory: η* {lr:.3g}, β* {beta:.3g} (rate {rate:.3g})", gid="theory")
    ax.set(xlabel=_axis_label(dims[0]), ylabel=_axis_label(dims[1]))
    never = f"never reached tol (T = {result.steps})" if metric == "steps_to_tol" else "not finite"
    handles = ax.get_lines() + [Patch(color=NEVER, label=never), Patch(color=UNSTABLE, label="diverged (rate ≥ 1)")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, fontsize="x-small")
    return ax


def _power(value):
    """A number as mathtext, 10^k for a power of ten."""
    exponent = np.log10(value)
    return f"$10^{{{int(round(exponent))}}}$" if np.isclose(exponent, round(exponent)) else f"{value:g}"


def _axis_label(dim):
    return {"lr": "learning rate η", "beta": "momentum β"}.get(dim, dim)


def _short(value):
    return f"{value} steps" if isinstance(value, (int, np.integer)) else f"{value:.3g}"
