"""Momentum as physics (Goodfellow, Bengio and Courville, §8.3): the terminal velocity under a
constant gradient, and the heavy ball as a particle under three kinds of friction."""

import numpy as np

from polyak import analysis
from polyak.plot._paths import step_lengths
from polyak.plot._style import axes, style
from polyak.problems import Quadratic
from polyak.rules import Momentum
from polyak.solve import run

#: The drag force on a particle of velocity u, per kind of friction (coefficient k).
DRAGS = {
    "viscous": lambda u, k: k * u,
    "turbulent": lambda u, k: k * u * np.abs(u),
}


def terminal_velocity(beta=(0.5, 0.9, 0.99), *, lr=0.1, grad=1.0, steps=700, ax=None):
    """The step length under a constant gradient, tending to the terminal velocity ε‖g‖/(1 − α).

    Goodfellow's momentum v ← αv − εg, θ ← θ + v on f(θ) = gθ (a constant gradient g) from
    v₀ = 0: the step is |vₜ| = ε‖g‖(1 − αᵗ)/(1 − α), so momentum multiplies the step by
    1/(1 − α) — 2, 10 and 100 for α = 0.5, 0.9, 0.99
    (:func:`polyak.analysis.terminal_velocity`, dashed). Steps are shown in units of ε‖g‖,
    from runs of :func:`polyak.run` (Goodfellow's convention).

    Parameters
    ----------
    beta : sequence of float
        The momenta α in [0, 1), one curve each.
    lr, grad : float
        ε and the gradient g.
    steps : int

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    alphas = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    result = run(Quadratic.diagonal([0.0], c=[grad]), Momentum(lr, alphas, convention="goodfellow"),
                 [0.0], steps, record="trajectory")
    unit = lr * abs(grad)
    limits = analysis.terminal_velocity(lr, abs(grad), alphas) / unit
    before = len(ax.get_lines())
    step_lengths(result, ax=ax, unit=unit)
    for i, (alpha, line, limit) in enumerate(zip(alphas, ax.get_lines()[before:], limits)):
        (bound,) = ax.plot([0, steps], [limit, limit], ":", color="black", linewidth=1.2, zorder=3,
                           label="terminal velocity 1/(1 − α)" if i == 0 else None)
        bound.set_gid("terminal")
        ax.annotate(f"α = {alpha:g}: {limit:.3g}×", (steps, limit), xytext=(-4, 4), textcoords="offset points",
                    ha="right", va="bottom", fontsize="small", color=line.get_color(), fontweight="bold")
    ax.set(ylabel="step $|θ_t - θ_{t-1}|$ in units of $ε\\|g\\|$", ylim=(None, 2 * limits.max()))
    ax.legend(fontsize="small", loc="lower right", bbox_to_anchor=(1.0, 0.25))
    return ax


def particle(drag, coefficient, *, dt=0.1, steps=400, x0=1.0, curvature=1.0):
    """The position of a unit mass in the bowl f(x) = ½λx² under a friction force, per step.

    Semi-implicit Euler with step dt, velocity u: u ← u − dt(λx + F(u)), x ← x + dt·u, from
    rest at x0, with F(u) = k·u ("viscous"), k·u|u| ("turbulent") or, for "dry" (Coulomb)
    friction of strength k, a force that holds the particle at rest while |u/dt − λx| ≤ k
    and else opposes the motion with magnitude k. With viscous drag this is exactly heavy
    ball in Goodfellow's convention, α = 1 − k·dt and ε = dt² (v = dt·u).

    Returns
    -------
    ndarray, shape (steps + 1,)
        x₀, x₁, …
    """
    if drag not in (*DRAGS, "dry"):
        raise ValueError(f"drag must be 'viscous', 'turbulent' or 'dry'; got {drag!r}")
    x, u = float(x0), 0.0
    path = [x]
    for _ in range(steps):
        if drag == "dry":
            pushed = u - dt * curvature * x
            u = 0.0 if abs(pushed) <= dt * coefficient else pushed - dt * coefficient * np.sign(pushed)
        else:
            u -= dt * (curvature * x + DRAGS[drag](u, coefficient))
        x += dt * u
        path.append(x)
    return np.array(path)


def friction(*, coefficients=None, dt=0.1, duration=40.0, x0=1.0, ax=None):
    """The heavy ball as a particle in f(x) = ½x² with viscous, turbulent and dry friction.

    Goodfellow §8.3.2: momentum is a particle under the force −∇f plus viscous drag −k·u.
    Turbulent drag −k·u|u| is too weak at low speed: the particle keeps swinging (its
    amplitude falls only as about 1/t). Dry friction of constant strength k is too strong:
    the particle stops where |∇f(x)| = |x| ≤ k (the shaded band), short of the minimum. Only
    viscous drag settles at x* = 0; its curve is :func:`polyak.run` with heavy ball in
    Goodfellow's convention (α = 1 − k·dt, ε = dt²), the others :func:`particle`.

    Parameters
    ----------
    coefficients : dict, optional
        k per kind of friction; by default viscous 0.5, turbulent 0.5, dry 0.3.
    dt, duration, x0 : float
        Time step, time shown, start (at rest).

    Returns
    -------
    matplotlib Axes
    """
    ax = axes(ax)
    k = dict(viscous=0.5, turbulent=0.5, dry=0.3) | dict(coefficients or {})
    steps = int(round(duration / dt))
    time = dt * np.arange(steps + 1)
    heavy_ball = run(Quadratic.diagonal([1.0]), Momentum(dt * dt, 1 - k["viscous"] * dt, convention="goodfellow"),
                     [x0], steps, record="trajectory")
    paths = {"viscous": heavy_ball.trajectory[:, 0],
             "turbulent": particle("turbulent", k["turbulent"], dt=dt, steps=steps, x0=x0),
             "dry": particle("dry", k["dry"], dt=dt, steps=steps, x0=x0)}
    labels = {"viscous": f"viscous, $-{k['viscous']:g}u$: heavy ball (α = {1 - k['viscous'] * dt:g}, "
                         f"ε = {dt * dt:g})",
              "turbulent": f"turbulent, $-{k['turbulent']:g}u|u|$", "dry": f"dry, ${k['dry']:g}$ against the motion"}
    ax.axhspan(-k["dry"], k["dry"], color="#CC79A7", alpha=0.15, linewidth=0,
               label=f"dry friction holds: |x| ≤ {k['dry']:g}")
    ax.axhline(0.0, color="black", linewidth=0.8)
    for i, name in enumerate(paths):
        (line,) = ax.plot(time, paths[name], label=labels[name], **style(i))
        line.set_gid(name)
    ax.set(xlabel="time $t$ (step dt = %g)" % dt, ylabel="position $x$ (minimum at 0)")
    ax.legend(fontsize="small", loc="upper right")
    return ax
