"""What every figure of polyak.plot shares: the axes to draw on, colors, labels, heat maps."""

import numpy as np

from polyak.results import Result

#: Okabe and Ito's colors, which stay apart for the common forms of color blindness.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
#: Line styles, cycled with the colors where curves may lie on top of each other.
DASHES = ("-", "--", "-.", ":")


def axes(ax, **subplots):
    """`ax`, or the Axes of a new pyplot figure (constrained layout) when `ax` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # noqa: PLC0415 -- pyplot only when the caller gave no Axes

    return plt.subplots(layout="constrained", **subplots)[1]


def integer_steps(ax):
    """Ticks of the horizontal axis at whole steps only."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))


def plain_log_ticks(ax, which="y"):
    """Label a logarithmic axis ("x" or "y") of a narrow range with plain numbers (0.3, 0.5, 1, 2)."""
    from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: PLC0415

    axis = ax.yaxis if which == "y" else ax.xaxis
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axis.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(plain)


def style(i, dashed=False):
    """Color (and, when `dashed`, line style) of the i-th curve."""
    return dict(color=PALETTE[i % len(PALETTE)], linestyle=DASHES[i % len(DASHES)] if dashed else "-")


def names(labels, count, default):
    """`labels` checked to hold `count` entries, or ``default(i)`` for each i."""
    if labels is None:
        return [default(i) for i in range(count)]
    labels = list(labels)
    if len(labels) != count:
        raise ValueError(f"labels must have one entry per curve ({count}); got {len(labels)}")
    return labels


def rows(results, field):
    """The recorded `field` ("trajectory" or "loss") of every configuration of `results` (a
    Result or a list of them), each as (its Result, recorded_at, array of shape (K, ...)), the
    records after a stop (NaN) dropped."""
    results = [results] if isinstance(results, Result) else list(results)
    out = []
    for result in results:
        values = getattr(result, field)
        if values is None:
            raise ValueError(f"the result has no {field}: run it with record={field!r}")
        single = values.ndim == (2 if field == "trajectory" else 1)
        for row in ([values] if single else list(values)):
            kept = np.all(np.isfinite(row.reshape(len(row), -1)), axis=1)
            out.append((result, result.recorded_at[kept], row[kept]))
    return out


def geometric(values):
    """Whether `values` (at least 3, positive, increasing) are evenly spaced in log, not linearly."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 3 or not np.all(values > 0) or not np.all(np.diff(values) > 0):
        return False
    ratios, steps = np.diff(np.log(values)), np.diff(values)
    return bool(np.allclose(ratios, ratios[0], rtol=1e-6) and not np.allclose(steps, steps[0], rtol=1e-6))


def edges(values):
    """Cell edges around the centers `values` (midpoints, in log space for a geometric axis)."""
    values = np.asarray(values, dtype=np.float64)
    log = geometric(values)
    space = np.log(values) if log else values
    if space.size == 1:
        cells = space[0] + np.array([-0.5, 0.5])
    else:
        inner = (space[1:] + space[:-1]) / 2
        cells = np.concatenate([[2 * space[0] - inner[0]], inner, [2 * space[-1] - inner[-1]]])
    return np.exp(cells) if log else cells


def heat_map(ax, x, y, values, **options):
    """``pcolormesh`` of `values` (len(y), len(x)) with cells centered on x and y, rasterized (a
    light SVG); log axes where x or y is geometric. Returns the QuadMesh."""
    mesh = ax.pcolormesh(edges(x), edges(y), values, shading="flat", rasterized=True, **options)
    if geometric(x):
        ax.set_xscale("log")
        if x[-1] / x[0] < 1e3:
            plain_log_ticks(ax, "x")
    if geometric(y):
        ax.set_yscale("log")
        if y[-1] / y[0] < 1e3:
            plain_log_ticks(ax, "y")
    return mesh


def cmap(name, over=None, under=None, bad=None):
    """The named colormap with colors for values over/under its range and for masked ones."""
    import matplotlib  # noqa: PLC0415

    return matplotlib.colormaps[name].with_extremes(over=over, under=under, bad=bad)


def mark(ax, x, y, label, *, marker="*", color="white", size=15, gid=None):
    """One point drawn as a large marker with a black edge (legible on any heat map)."""
    (point,) = ax.plot([x], [y], linestyle="none", marker=marker, markersize=size, color=color,
                       markeredgecolor="black", markeredgewidth=1.2, label=label, zorder=5)
    point.set_gid(gid)
    return point
