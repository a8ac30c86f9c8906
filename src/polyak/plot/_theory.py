"""The theory's maps and curves: rate and regimes over (η, β), optimal rates against κ."""

import numpy as np

from polyak import analysis
from polyak.plot._style import axes, cmap, heat_map, mark, style

#: The colors of the regimes of :func:`polyak.analysis.regime`, in ``analysis.REGIMES`` order.
REGIME_COLORS = {"monotonic": "#56B4E9", "ripples": "#009E73", "oscillating": "#E69F00", "one-step": "#000000",
                 "divergent": "#D9D9D9"}


def _stability_line(ax, beta, scale, nesterov=False, symbol="λ"):
    """The edge of the stable region, ηλ = 2 + 2β (Nesterov: (2 + 2β)/(1 + 2β)), as η = edge/scale."""
    edge = (2 + 2 * beta) / ((1 + 2 * beta) if nesterov else 1)
    label = f"stability edge $η{symbol} = " + ("(2 + 2β)/(1 + 2β)$" if nesterov else "2 + 2β$")
    (line,) = ax.plot(edge / scale, beta, color="black", linewidth=1.5, label=label)
    line.set_gid("stability")
    return line


def rate_map(spectrum=None, *, lr=None, beta=None, ax=None, nesterov=False, levels=(0.9, 0.95, 0.99)):
    """The rate over (η, β): the worst spectral radius over the spectrum, as a heat map.

    Per eigenvalue λ the iteration's rate is the largest modulus of the roots r of
    r² − (1 + β − ηλ)r + β = 0 (√β when the roots are complex;
    :func:`polyak.analysis.spectral_radius`); the map shows max over λ of it, light gray where
    it is ≥ 1 (beyond the stability edge ηL = 2 + 2β, drawn), with contour lines at `levels`
    and the optimum η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))² marked
    (:func:`polyak.analysis.optimal_parameters`), as in Goh's "Why Momentum Really Works".

    Parameters
    ----------
    spectrum : array_like, optional
        The eigenvalues (the extremes μ = min, L = max decide the rate). None: one eigenvalue
        λ = 1, so that the horizontal axis reads ηλ.
    lr, beta : 1-D array_like, optional
        The grid (cell centers); by default 300 learning rates in (0, 4/L] and 200 momenta in
        [0, 0.995].
    nesterov : bool
        Nesterov's form (then the optimum of ``method="nesterov"``).
    levels : sequence of float
        Rates drawn as contour lines.

    Returns
    -------
    matplotlib Axes
        Its QuadMesh holds the rates (len(beta), len(lr)).
    """
    ax = axes(ax)
    lam = np.array([1.0]) if spectrum is None else np.asarray(spectrum, dtype=np.float64).ravel()
    mu, L = float(lam.min()), float(lam.max())
    lr = np.linspace(4 / L / 300, 4 / L, 300) if lr is None else np.asarray(lr, dtype=np.float64)
    beta = np.linspace(0.0, 0.995, 200) if beta is None else np.asarray(beta, dtype=np.float64)
    radius = analysis.spectral_radius(lr[None, :, None], beta[:, None, None], np.array([mu, L]),
                                      nesterov=nesterov).max(axis=-1)
    vmin = max(0.0, np.floor(radius.min() * 20) / 20)
    mesh = heat_map(ax, lr, beta, radius, cmap=cmap("viridis", over="#D9D9D9"), vmin=vmin, vmax=1.0)
    mesh.set_gid("rate")
    ax.figure.colorbar(mesh, ax=ax, extend="max", label="rate: max$_λ$ spectral radius (gray: ≥ 1)")
    lines = ax.contour(lr, beta, radius, levels=sorted(levels), colors="black", linewidths=0.7)
    ax.clabel(lines, fmt="%g", fontsize="small")
    _stability_line(ax, beta, L, nesterov, "λ" if spectrum is None else "L")
    best_lr, best_beta, best_rate = analysis.optimal_parameters(mu, L, "nesterov" if nesterov else "heavy_ball")
    mark(ax, best_lr, best_beta, f"optimum η* = {best_lr:.3g}, β* = {best_beta:.3g}: rate {best_rate:.3g}",
         gid="optimum")
    ax.set(xlabel="ηλ" if spectrum is None else "learning rate η", ylabel="momentum β",
           xlim=(lr[0], lr[-1]), ylim=(beta[0], beta[-1]))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2, fontsize="small")
    return ax


def regime_map(*, lr_lam=None, beta=None, ax=None):
    """The regimes of one eigendirection over (ηλ, β), after Goh's "Why Momentum Really Works".

    By the roots r of r² − (1 + β − ηλ)r + β = 0 (:func:`polyak.analysis.regime`): complex
    roots (β > (1 − √(ηλ))², above the dashed curve of critical damping): ripples, a
    decaying spiral; real roots, the larger positive: monotonic (over-damped); negative:
    oscillating; spectral radius ≥ 1 (ηλ ≥ 2 + 2β, right of the solid line): divergent; both
    roots 0 (ηλ = 1, β = 0, the dot): one step to the minimum.

    Parameters
    ----------
    lr_lam, beta : 1-D array_like, optional
        The grid: by default 400 values of ηλ in (0, 4] and 200 of β in [0, 0.995].

    Returns
    -------
    matplotlib Axes
        Its QuadMesh holds each cell's index into ``polyak.analysis.REGIMES``.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    ax = axes(ax)
    x = np.linspace(0.01, 4.0, 400) if lr_lam is None else np.asarray(lr_lam, dtype=np.float64)
    beta = np.linspace(0.0, 0.995, 200) if beta is None else np.asarray(beta, dtype=np.float64)
    names = analysis.regime(x[None, :], beta[:, None], 1.0)
    index = np.select([names == name for name in analysis.REGIMES], range(len(analysis.REGIMES)), -1)
    colors = ListedColormap([REGIME_COLORS[name] for name in analysis.REGIMES])
    mesh = heat_map(ax, x, beta, index, cmap=colors, norm=BoundaryNorm(np.arange(len(colors.colors) + 1) - 0.5,
                                                                      len(colors.colors)))
    mesh.set_gid("regime")
    critical = np.linspace(0.0, min(4.0, x[-1]), 400)
    (curve,) = ax.plot(critical, (1 - np.sqrt(critical)) ** 2, "--", color="black", linewidth=1.5,
                       label="critical damping $β = (1 - \\sqrt{ηλ})^2$")
    curve.set_gid("critical")
    _stability_line(ax, beta, 1.0)
    handles = [Patch(color=REGIME_COLORS[name], label=name) for name in analysis.REGIMES
               if name != "one-step" and np.any(names == name)]
    one_step = ax.plot([1.0], [0.0], "o", color=REGIME_COLORS["one-step"], markersize=5, clip_on=False,
                       label="one-step: ηλ = 1, β = 0")
    ax.legend(handles=handles + ax.get_lines()[-3:-1] + one_step, loc="upper center", bbox_to_anchor=(0.5, -0.13),
              ncols=3, fontsize="small")
    ax.set(xlabel="ηλ (learning rate × eigenvalue)", ylabel="momentum β", xlim=(x[0], x[-1]),
           ylim=(beta[0], beta[-1]))
    return ax


def rate_curves(kappa=None, *, ax=None):
    """The best rates against the condition number κ = L/μ: 1 − rate, log-log.

    At the optimal parameters of :func:`polyak.analysis.optimal_parameters` on [1/κ, 1]:
    gradient descent (κ − 1)/(κ + 1), heavy ball (√κ − 1)/(√κ + 1), Nesterov 1 − 1/√κ. The
    curves are the spectral radii of the iterations at those parameters (max over μ and L,
    :func:`polyak.analysis.spectral_radius`), which equal the formulas: 1 − rate falls as
    2/κ for gradient descent, as 2/√κ and 1/√κ with momentum (steps ∝ κ against √κ; the
    right axis reads 1/(1 − rate), about the steps that shrink the error by e).

    Parameters
    ----------
    kappa : 1-D array_like, optional
        Condition numbers ≥ 1; by default 200 from 1 to 10⁶.

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    kappa = np.geomspace(1.0, 1e6, 200) if kappa is None else np.asarray(kappa, dtype=np.float64)
    methods = (("gd", "gradient descent: $(κ - 1)/(κ + 1)$"),
               ("heavy_ball", "heavy ball: $(\\sqrt{κ} - 1)/(\\sqrt{κ} + 1)$"),
               ("nesterov", "Nesterov: $1 - 1/\\sqrt{κ}$"))
    for i, (method, label) in enumerate(methods):
        rates = np.array([_achieved_rate(1 / k, 1.0, method) for k in kappa])
        (line,) = ax.plot(kappa, 1 - rates, label=label, **style(i, dashed=True))
        line.set_gid(method)
    ax.set(xscale="log", yscale="log", xlabel="condition number κ = L/μ",
           ylabel="1 − rate (error removed per step)")
    steps = ax.secondary_yaxis("right", functions=(_reciprocal, _reciprocal))
    steps.set_ylabel("≈ steps per e-fold of the error, 1/(1 − rate)")
    ax.legend(fontsize="small")
    return ax


def _reciprocal(values):
    with np.errstate(divide="ignore"):
        return 1 / np.asarray(values, dtype=np.float64)


def _achieved_rate(mu, L, method):
    lr, beta, _ = analysis.optimal_parameters(mu, L, method)
    return float(np.max(analysis.spectral_radius(lr, beta, np.array([mu, L]), nesterov=method == "nesterov")))
