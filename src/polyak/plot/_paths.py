"""Paths and curves over the steps: the textbook's contour plots, iterates, losses, weights."""

import matplotlib
import numpy as np

from polyak import analysis
from polyak.plot._style import axes, integer_steps, names, rows, style
from polyak.problems import Quadratic


def _window(default, values, margin=0.05):
    """The interval `default`, grown (with a margin) to hold every finite value of `values`."""
    low, high = min(default[0], np.min(values)), max(default[1], np.max(values))
    if (low, high) == tuple(default):
        return low, high
    pad = margin * (high - low)
    return low - pad * (low < default[0]), high + pad * (high > default[1])


def trace_2d(problem, results, labels=None, *, ax=None, x1=(-5.5, 1.0), x2=(-3.0, 1.0), levels=10,
             resolution=200):
    """Contours of a quadratic of dimension 2 and the paths of runs on it (d2l's ``show_trace_2d``).

    The contour lines of f(x) = ½ xᵀQx + cᵀx + b over the window `x1` × `x2` (the book's
    [−5.5, 1] × [−3, 1]), grown to hold every path: a diverging coordinate, which grows as
    |ρ|ᵗ with ρ = 1 − ηλ > 1 in modulus for gradient descent, widens its range. Each path
    x₀, x₁, …, x_T is drawn '-o'; the minimizer x* = −Q⁻¹c is marked '+'.

    Parameters
    ----------
    problem : Quadratic
        One problem of dimension 2.
    results : Result or list of Result
        Runs on it recorded with ``record="trajectory"``; each configuration is one path.
    labels : list of str, optional
        One per path (a legend is drawn when given).
    ax : matplotlib Axes, optional
    x1, x2 : (float, float)
        The window before it grows.
    levels : int or sequence of float
        The number of contour lines, spaced evenly in √(f − f*) (so that they lie evenly apart,
        as the bowl's level sets), or the levels of f themselves.
    resolution : int
        Grid points per axis for the contours.

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(problem, Quadratic) or problem.batched or problem.dim != 2:
        raise ValueError("trace_2d draws one problem of dimension 2 (a polyak.Quadratic)")
    ax = axes(ax)
    paths = rows(results, "trajectory")
    labels = names(labels, len(paths), lambda i: None)
    points = np.concatenate([path for _, _, path in paths])
    x1, x2 = _window(x1, points[:, 0]), _window(x2, points[:, 1])
    grid = np.stack(np.meshgrid(np.linspace(*x1, resolution), np.linspace(*x2, resolution)), axis=-1)
    values = problem.value(grid)
    low = float(problem.min_value())
    if np.ndim(levels) == 0:  # evenly spaced in √(f − f*): contours equally far apart, as a bowl
        levels = low + np.linspace(0.0, np.sqrt(values.max() - low), int(levels) + 1)[1:] ** 2
    contours = ax.contour(grid[..., 0], grid[..., 1], values, levels=levels, colors="#1f77b4", linewidths=0.8)
    contours.set_gid("contours")
    single = len(paths) == 1
    for i, ((_, _, path), label) in enumerate(zip(paths, labels)):
        color = "#ff7f0e" if single else style(i)["color"]  # (one path: the book's orange)
        (line,) = ax.plot(path[:, 0], path[:, 1], "-o", color=color, markersize=3.5, linewidth=1.2, label=label)
        line.set_gid("path")
    star = problem.minimizer()
    ax.plot([star[0]], [star[1]], "+", color="black", markersize=10, markeredgewidth=1.5, gid="minimizer")
    ax.set(xlabel="$x_1$", ylabel="$x_2$", xlim=x1, ylim=x2)
    if any(label is not None for label in labels):
        ax.legend(loc="lower right", fontsize="small")
    return ax


def coordinates(results, labels=None, *, ax=None, dashed=False, ylabel="$x_t$", markers=False, cmap=None,
                magnitude=False):
    """Every coordinate of the iterates against the step: xₜ,ᵢ for t = recorded_at.

    For a quadratic in its eigenbasis each coordinate follows its own linear recursion (for
    gradient descent xₜ = (1 − ηλ)ᵗ x₀; for heavy ball the 2×2 recursion of
    :mod:`polyak.analysis`), so these curves are the textbook's scalar-function figures.

    Parameters
    ----------
    results : Result or list of Result
        Runs recorded with ``record="trajectory"``; each coordinate of each configuration is
        one curve.
    labels : list of str, optional
        One per curve (a legend is drawn when given).
    dashed : bool
        Cycle line styles with the colors (for curves that may coincide).
    ylabel : str
    markers : bool
        Mark every recorded point.
    cmap : str, optional
        Color the curves in order along this colormap (for many curves) instead of the palette.
    magnitude : bool
        Draw |xₜ,ᵢ| on a logarithmic axis (the envelope of the decay; exact zeros are left out).

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    curves = [(t, path[:, i]) for _, t, path in rows(results, "trajectory") for i in range(path.shape[1])]
    labels = names(labels, len(curves), lambda i: None)
    shade = None if cmap is None else matplotlib.colormaps[cmap].resampled(max(len(curves), 2))
    for i, ((t, values), label) in enumerate(zip(curves, labels)):
        look = style(i, dashed) if shade is None else dict(color=shade(i))
        shown = np.where(values != 0, np.abs(values), np.nan) if magnitude else values
        (line,) = ax.plot(t, shown, marker="o" if markers else None, markersize=3, label=label, **look)
        line.set_gid("coordinate")
    ax.set(xlabel="step $t$", ylabel=ylabel, yscale="log" if magnitude else "linear")
    integer_steps(ax)
    if any(label is not None for label in labels):
        ax.legend(fontsize="small")
    return ax


def step_lengths(results, labels=None, *, ax=None, unit=1.0, dashed=False, log=True):
    """The length of every step, ‖xₜ − xₜ₋₁‖ for t = 1, …, against t (in units of `unit`).

    For heavy ball in the d2l convention the step is η‖vₜ‖; under a constant gradient g it
    tends to the terminal velocity η‖g‖/(1 − β) (:func:`polyak.analysis.terminal_velocity`).

    Parameters
    ----------
    results : Result or list of Result
        Runs recorded with ``record="trajectory"`` at every step (``every=1``).
    labels : list of str, optional
    unit : float
        Steps are divided by it (e.g. η‖g‖).
    dashed : bool
        Cycle line styles with the colors.
    log : bool
        A logarithmic axis for the step.

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    paths = rows(results, "trajectory")
    labels = names(labels, len(paths), lambda i: None)
    for i, ((_, t, path), label) in enumerate(zip(paths, labels)):
        steps = np.linalg.norm(np.diff(path.reshape(len(path), -1), axis=0), axis=1) / unit
        (line,) = ax.plot(t[1:], steps, label=label, **style(i, dashed))
        line.set_gid("step")
    ax.set(xlabel="step $t$", ylabel="step length $\\|x_t - x_{t-1}\\|$")
    integer_steps(ax)
    if log:
        ax.set_yscale("log")
    if any(label is not None for label in labels):
        ax.legend(fontsize="small")
    return ax


def loss_curves(results, labels=None, *, ax=None, x="steps", minimum=0.0, log=False, ylim=None):
    """The recorded loss against steps or epochs, one curve per configuration.

    For a quadratic the loss is f(xₜ) (minus `minimum`, e.g. f* to show f(xₜ) − f*, which
    falls as ρ²ᵗ for rate ρ); for training (:func:`polyak.train.linear_regression`) it is
    the mean squared loss ½(ŷ − y)² over the data set, against the epochs seen.

    Parameters
    ----------
    results : Result or list of Result
        Runs recorded with ``record="loss"`` (training records it always).
    labels : list of str, optional
        One per configuration.
    x : "steps" or "epochs"
        The horizontal axis: ``recorded_at``, or the ``epochs`` extra of a training result.
    minimum : float
        Subtracted from every loss.
    log : bool
        A logarithmic loss axis.
    ylim : (float, float), optional

    Returns
    -------
    matplotlib Axes
    """
    if x not in ("steps", "epochs"):
        raise ValueError(f"x must be 'steps' or 'epochs'; got {x!r}")
    ax = axes(ax)
    curves = rows(results, "loss")
    labels = names(labels, len(curves), lambda i: None)
    for i, ((result, t, loss), label) in enumerate(zip(curves, labels)):
        where = result.epochs[np.isin(result.recorded_at, t)] if x == "epochs" else t
        (line,) = ax.plot(where, loss - minimum, label=label, **style(i))
        line.set_gid("loss")
    ax.set(xlabel="epoch" if x == "epochs" else "step $t$",
           ylabel="loss" if minimum == 0 else "$f(x_t) - f^*$")
    if x == "steps":
        integer_steps(ax)
    if log:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    if any(label is not None for label in labels):
        ax.legend(fontsize="small")
    return ax


def effective_weights(beta, t=40, *, ax=None):
    """The weight βᵗ of the gradient t steps back in the velocity (d2l's effective-weights figure).

    Unrolled, v_t = Σ_{τ<t} β^τ g_{t−τ}: momentum averages about 1/(1 − β) recent gradients
    (:func:`polyak.analysis.effective_weights`, :func:`polyak.analysis.effective_sample_size`).

    Parameters
    ----------
    beta : float or sequence of float
        Momenta in [0, 1), one curve each.
    t : int
        Steps back shown, τ = 0, …, t − 1.

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    betas = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    weights = analysis.effective_weights(betas, t)
    sizes = analysis.effective_sample_size(betas)
    for i, (b, w, n) in enumerate(zip(betas, weights, sizes)):
        (line,) = ax.plot(np.arange(t), w, label=f"β = {b:.2f}  (1/(1 − β) = {n:.3g})", **style(i))
        line.set_gid("weights")
    ax.set(xlabel="steps back τ", ylabel="weight $β^τ$ of $g_{t-τ}$")
    integer_steps(ax)
    ax.legend(fontsize="small")
    return ax
