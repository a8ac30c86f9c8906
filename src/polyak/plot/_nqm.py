"""The noisy quadratic model (Zhang et al., NeurIPS 2019): steps to a loss threshold against
the batch size, and the exact expected loss against Monte Carlo."""

import numpy as np

from polyak.plot._style import axes, names, plain_log_ticks, style


def nqm_steps(results, labels=None, *, ax=None, critical=None):
    """Steps to reach a loss threshold against the batch size, log-log (the paper's Figure 5).

    Each curve is :func:`polyak.nqm.optimal_steps`: for every batch size b, the fewest steps
    min over (η, β) of min{t : E[ℓ(θₜ)] ≤ threshold}, with E[ℓ] exact
    (:func:`polyak.nqm.expected_loss`). Perfect scaling is steps ∝ 1/b (the dotted line of
    slope −1 through the first curve's first point, drawn down to half the fewest steps shown);
    past the critical batch size the curve flattens, at the noiseless steps.

    Parameters
    ----------
    results : sequence of optimal_steps results
        Each with ``.batch_size`` and ``.steps`` (−1 where the threshold is never reached:
        not drawn).
    labels : list of str, optional
        One per curve.
    critical : sequence of float, optional
        Critical batch sizes (:func:`polyak.nqm.critical_batch_size`), one per curve, marked
        by a vertical dotted line in the curve's color.

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    results = list(results)
    labels = names(labels, len(results), lambda i: None)
    critical = [None] * len(results) if critical is None else list(critical)
    first, lowest = None, np.inf
    for i, (result, label, edge) in enumerate(zip(results, labels, critical)):
        batch = np.asarray(result.batch_size, dtype=np.float64).ravel()
        steps = np.asarray(result.steps, dtype=np.float64).ravel()
        steps[steps < 0] = np.nan
        lowest = min(lowest, np.nanmin(steps, initial=np.inf))
        (line,) = ax.plot(batch, steps, marker="o", markersize=3.5, label=label, **style(i, dashed=True))
        line.set_gid("steps")
        if first is None and np.any(np.isfinite(steps)):
            k = np.flatnonzero(np.isfinite(steps))[0]
            first = (batch, batch[k] * steps[k])
        if edge is not None and np.isfinite(edge):
            ax.axvline(edge, color=line.get_color(), linestyle=":", linewidth=1.2)
    if first is not None:
        shown = first[1] / first[0] >= lowest / 2  # (down to the curves, not beyond)
        (ideal,) = ax.plot(first[0][shown], first[1] / first[0][shown], ":", color="gray", linewidth=1,
                           label="perfect scaling, steps ∝ 1/b")
        ideal.set_gid("ideal")
    ax.set_xscale("log", base=2)
    ax.set(yscale="log", xlabel="batch size b", ylabel="steps to reach the loss threshold")
    ax.legend(fontsize="small")
    return ax


def nqm_loss(model, simulation, labels=None, *, ax=None, band=2.0, steady=True, log=True):
    """The exact expected loss against Monte Carlo, with the simulation's error band.

    The line is E[ℓ(θₜ)] = ½ Σ hᵢ E[θ²ᵢ,ₜ] from the 3×3 second-moment recursion
    (:func:`polyak.nqm.expected_loss`); the markers the mean loss of
    :func:`polyak.nqm.simulate`'s runs, the band ± `band` standard errors around it.

    Parameters
    ----------
    model : polyak.nqm.NoisyQuadratic
    simulation : SimulationResult
        Of :func:`polyak.nqm.simulate` on `model`; every configuration is one curve, with
        the configuration's lr, beta, batch_size and precondition for the exact loss.
    labels : list of str, optional
        One per configuration.
    band : float
        Half-width of the band in standard errors.
    steady : bool
        Also draw the steady-state loss, the t → ∞ limit (:func:`polyak.nqm.steady_state_loss`;
        the noise floor), dotted.
    log : bool
        A logarithmic loss axis.

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.lines import Line2D  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    from polyak.nqm import expected_loss, steady_state_loss  # noqa: PLC0415 -- (the NQM only where drawn)

    ax = axes(ax)
    t = np.asarray(simulation.t)
    config = dict(lr=simulation.lr, beta=simulation.beta, batch_size=simulation.batch_size,
                  precondition=simulation.precondition)
    config = {name: np.asarray(value)[..., None] for name, value in config.items()}
    exact = np.asarray(expected_loss(model, t, **config))
    exact = np.broadcast_to(exact, simulation.mean.shape).reshape(-1, len(t))
    limits = np.asarray(steady_state_loss(model, **config))[..., 0]
    limits = np.broadcast_to(limits, simulation.mean.shape[:-1]).ravel()
    mean, stderr = (np.asarray(a).reshape(-1, len(t)) for a in (simulation.mean, simulation.stderr))
    labels = names(labels, len(mean), lambda i: None)
    for i, (line_values, m, s, limit, label) in enumerate(zip(exact, mean, stderr, limits, labels)):
        color = style(i)["color"]
        ax.fill_between(t, m - band * s, m + band * s, color=color, alpha=0.25, linewidth=0)
        (dots,) = ax.plot(t, m, "o", color=color, markersize=3)
        dots.set_gid("simulated")
        (line,) = ax.plot(t, line_values, "-", color=color, linewidth=1.5, label=label)
        line.set_gid("exact")
        if steady:
            (floor,) = ax.plot(t[[0, -1]], [limit, limit], ":", color=color, linewidth=1.2)
            floor.set_gid("steady")
    ax.set(yscale="log" if log else "linear", xlabel="step $t$", ylabel="loss $E[\\ell(θ_t)]$")
    if log:
        plain_log_ticks(ax)
    gray = "#555555"
    key = [Line2D([], [], color=gray, label="exact expected loss"),
           Line2D([], [], color=gray, marker="o", markersize=3, linestyle="none",
                  label=f"Monte Carlo mean of {simulation.replicas} runs"),
           Patch(color=gray, alpha=0.25, label=f"± {band:g} standard errors")]
    if steady:
        key.append(Line2D([], [], color=gray, linestyle=":", label="steady state (t → ∞)"))
    curves = [line for line in lines_with_labels(ax)]
    ax.legend(handles=curves + key, fontsize="small")
    return ax


def lines_with_labels(ax):
    """The Axes' lines that carry a label of their own (matplotlib names the others '_child…')."""
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]
