"""The figures of ``polyak tour``: each a function that draws on a matplotlib Figure with
:mod:`polyak.plot` and returns the lines it adds to the tour's summary, registered with its
caption (what it shows, the formula behind it, the source it reproduces)."""

import inspect
from dataclasses import dataclass

import numpy as np

import polyak.plot as plot
from polyak import analysis, data, nqm, train
from polyak.nqm import simulate
from polyak.cli import TEXTBOOK_RUNS, TEXTBOOK_START, TEXTBOOK_STEPS, textbook_table
from polyak.plot._style import PALETTE
from polyak.problems import Quadratic, ill_conditioned_2d
from polyak.rules import GD, Momentum
from polyak.solve import run
from polyak.sweeps import sweep

D2L = "Dive into Deep Learning (Zhang, Lipton, Li, Smola), §12.6 “Momentum”"
GOH = "G. Goh, “Why Momentum Really Works”, Distill 2017"
GOODFELLOW = "Goodfellow, Bengio, Courville, Deep Learning, §8.3.2 “Momentum”"
NQM = ("Zhang, Li, Nado, Martens, Sachdeva, Dahl, Shallue, Grosse, “Which Algorithmic Choices Matter at "
       "Which Batch Sizes?”, NeurIPS 2019")


@dataclass(frozen=True)
class TourFigure:
    """One figure of the tour: its file name, title, size (inches) and drawing function, whose
    docstring is the caption: what it shows, then paragraphs "Formula: …" and "Reproduces: …"
    (with ``{d2l}``-style fields of CAPTION_FIELDS)."""

    name: str
    title: str
    size: tuple
    draw: object

    @property
    def caption(self):
        """{"shows": …, "formula": …, "source": …} from the docstring, fields filled in."""
        paragraphs = [" ".join(part.split()) for part in inspect.cleandoc(self.draw.__doc__).split("\n\n")]
        parts = {"shows": paragraphs[0]}
        for paragraph in paragraphs[1:]:
            key, _, text = paragraph.partition(": ")
            parts[{"Formula": "formula", "Reproduces": "source"}[key]] = text
        return {key: text.format(**CAPTION_FIELDS) for key, text in parts.items()}


FIGURES = []


def figure(name, title, size=(6.4, 4.4)):
    """Register the decorated function (Figure -> summary lines) as a figure of the tour."""

    def register(draw):
        FIGURES.append(TourFigure(name, title, size, draw))
        return draw

    return register


@figure("textbook-2d", "The textbook's runs on f(x) = 0.1x₁² + 2x₂²", size=(13.0, 7.6))
def _textbook_2d(fig):
    """Gradient descent and momentum from (−5, −2), 20 steps each, over the contours of f; the last panel is
    f(xₜ) for every run. Gradient descent at lr 0.6 diverges along x₂ (its x₂ axis grows to hold the path);
    momentum at the same lr converges.

    Formula: d2l: vₜ = βvₜ₋₁ + gₜ, xₜ = xₜ₋₁ − ηvₜ (MXNet: vₜ = γvₜ₋₁ + ηgₜ, xₜ = xₜ₋₁ − vₜ); per eigenvalue
    λ the rate is the largest |r| with r² − (1 + β − ηλ)r + β = 0; gradient descent |1 − ηλ|.

    Reproduces: {d2l}, the figures of “An Ill-conditioned Problem” and “The Momentum Method” (§12.6.1.2–3,
    show_trace_2d).
    """
    problem = ill_conditioned_2d()
    grid = fig.subplots(2, 3)
    runs = []
    for ax, (name, rule) in zip(grid.flat, TEXTBOOK_RUNS):
        result = run(problem, rule, TEXTBOOK_START, TEXTBOOK_STEPS, record=("trajectory", "loss"))
        plot.trace_2d(problem, result, ax=ax)
        radius = analysis.rate(problem, rule)
        ax.set_title(f"{name}\nrate {radius:.3f}" + (" > 1: diverges" if radius > 1 else ""), fontsize="medium")
        runs.append(result)
    labels = [name.replace("momentum (MXNet convention)", "MXNet") for name, _ in TEXTBOOK_RUNS]
    plot.loss_curves(runs, labels, ax=grid.flat[5], log=True)
    grid.flat[5].set(ylabel="$f(x_t) - f^*$", title="all five runs: $f(x_t)$ ($f^* = 0$)")
    grid.flat[5].legend(fontsize="x-small", loc="upper left")
    return textbook_table()


@figure("effective-weights", "Effective weights and scalar gradient descent", size=(12.0, 4.4))
def _effective_weights(fig):
    """Left: the weight of the gradient τ steps back in the velocity, for β = 0.95, 0.9, 0.6, 0. Right:
    gradient descent with η = 0.1 on f(x) = ½λx² from x₀ = 1 for λ = 0.1, 1, 10, 19: monotone for ηλ < 1,
    oscillating for 1 < ηλ < 2.

    Formula: vₜ = Σ_τ β^τ gₜ₋τ (about 1/(1 − β) gradients); xₜ = (1 − ηλ)ᵗ x₀.

    Reproduces: {d2l}, “Effective Sample Weight” (§12.6.1.4) and “Scalar Functions” (§12.6.3.2).
    """
    left, right = fig.subplots(1, 2)
    plot.effective_weights([0.95, 0.9, 0.6, 0.0], 40, ax=left)
    lam = np.array([0.1, 1.0, 10.0, 19.0])
    result = run(Quadratic.diagonal(lam[:, None]), GD(0.1), [1.0], 20, record="trajectory")
    labels = [f"λ = {v:g} (1 − ηλ = {1 - 0.1 * v:g})".replace("-", "−") for v in lam]
    plot.coordinates(result, labels, ax=right, markers=True)
    right.axhline(0.0, color="gray", linewidth=0.6)
    right.set(ylabel="$x_t = (1 - ηλ)^t$", title="gradient descent, η = 0.1", xlabel="step $t$")
    left.set_title("momentum's weights")
    sizes = analysis.effective_sample_size([0.95, 0.9, 0.6, 0.0])
    return [f"effective weights: 1/(1 − β) = {', '.join(f'{n:g}' for n in sizes)} gradients for β = 0.95, 0.9, 0.6, 0"]


#: The book's three from-scratch runs on Airfoil: (lr, momentum).
AIRFOIL_RUNS = ((0.02, 0.5), (0.01, 0.9), (0.005, 0.9))


@figure("airfoil", "Minibatch SGD with momentum on Airfoil")
def _airfoil(fig):
    """The textbook's linear regression on the Airfoil Self-Noise data (1500 rows, standardized), batch 10, 2
    epochs, the loss over the whole set every 200 examples, for the book's three from-scratch runs; axes as
    the book has them (epochs 0 to 2, loss from 0.22 to 0.35, raised to 0.36 where the book's axis would cut
    the first point of lr 0.005, 0.352).

    Formula: v ← βv + ∇ℓ_B(w), w ← w − ηv, ℓ = mean ½(xᵀw + b − y)².

    Reproduces: {d2l}, “Implementation from Scratch” (§12.6.2.1); data: UCI Airfoil Self-Noise (CC BY 4.0).
    """
    ax = fig.subplots()
    X, y = data.airfoil()
    lrs, betas = (np.array(column) for column in zip(*AIRFOIL_RUNS))
    result = train.linear_regression(X, y, Momentum(lrs, betas))
    labels = [f"lr {lr:g}, momentum {beta:g}" for lr, beta in AIRFOIL_RUNS]
    top = max(0.35, np.ceil(np.nanmax(result.loss) * 100) / 100)  # the book's 0.35, unless that cuts a point
    plot.loss_curves(result, labels, ax=ax, x="epochs", ylim=(0.22, top))
    ax.set_xlim(0, 2)
    return [f"airfoil, {label}: loss {loss:.3f} after 2 epochs" for label, loss in zip(labels, result.loss[:, -1])]


@figure("exercise-2", "Exercise 2: many eigenvalues, λᵢ = 2⁻ⁱ", size=(13.0, 4.4))
def _exercise_2(fig):
    """f(x) = ½ Σ λᵢxᵢ² with λᵢ = 2⁻ⁱ, i = 1…10 (κ = 512), from xᵢ = 1: the magnitude of each coordinate under
    gradient descent (η = 1/L) and under heavy ball at its optimal parameters, and f(xₜ). Gradient descent
    removes the large-λ coordinates at once and the small ones slowly; momentum shrinks all of them at one
    rate √β, with ripples (after a transient rise of the largest).

    Formula: gradient descent: xₜ,ᵢ = (1 − ηλᵢ)ᵗ, rate 1 − μ/L; heavy ball η = 4/(√L + √μ)², β = ((√κ −
    1)/(√κ + 1))², rate (√κ − 1)/(√κ + 1) = √β for every λᵢ in [μ, L].

    Reproduces: {d2l}, §12.6 exercise 2.
    """
    import matplotlib  # noqa: PLC0415

    lam = 2.0 ** -np.arange(1, 11)
    problem = Quadratic.diagonal(lam)
    mu, L = lam.min(), lam.max()
    lr, beta, rate = analysis.optimal_parameters(mu, L)
    rules = {f"gradient descent, η = 1/L = {1 / L:g}": GD(1 / L),
             f"heavy ball, η = {lr:.3g}, β = {beta:.3g}": Momentum(lr, beta)}
    panels = fig.subplots(1, 3)
    results = []
    for ax, (name, rule) in zip(panels, rules.items()):
        result = run(problem, rule, np.ones(10), 150, record=("trajectory", "loss"))
        plot.coordinates(result, ax=ax, cmap="viridis", magnitude=True)
        ax.set(title=name, ylabel="$|x_{t,i}|$", ylim=(1e-8, 30))
        results.append(result)
    scale = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0.5, 10.5),
                                         matplotlib.colormaps["viridis"].resampled(10))
    fig.colorbar(scale, ax=panels[:2].tolist(), label="coordinate i  ($λ_i = 2^{-i}$)", ticks=range(1, 11))
    plot.loss_curves(results, [f"gradient descent (rate {1 - mu / L:.3f})", f"heavy ball (rate {rate:.3f})"],
                     ax=panels[2], log=True)
    panels[2].set(ylabel="$f(x_t)$", title="the loss ($f^* = 0$)")
    return [f"exercise 2 (κ = 512): f after 150 steps {results[0].loss[-1]:.3g} (gradient descent, η = 1/L) "
            f"against {results[1].loss[-1]:.3g} (heavy ball)"]


@figure("rate-map", "The rate over (η, β) for κ = 100")
def _rate_map(fig):
    """The convergence rate of heavy ball on a spectrum [μ, L] = [0.01, 1] over learning rate and momentum,
    with contour lines, the stability edge and the optimum; gray: divergent.

    Formula: rate = max over λ = μ and λ = L of the largest |r| with r² − (1 + β − ηλ)r + β = 0 (√β for complex
    roots); stable iff ηL < 2 + 2β; optimum η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))².

    Reproduces: {goh}, the figure of the convergence rate over step-size and momentum.
    """
    plot.rate_map([0.01, 1.0], ax=fig.subplots())
    lr, beta, rate = analysis.optimal_parameters(0.01, 1.0)
    return [f"rate map, κ = 100: optimum lr {lr:.4f}, beta {beta:.4f}, rate {rate:.4f} "
            f"(gradient descent's best {analysis.optimal_parameters(0.01, 1.0, 'gd')[2]:.4f})"]


#: One eigendirection, ηλ = 0.25: over-, critically and under-damped momenta.
DAMPING_LR_LAM = 0.25
DAMPING_KINDS = ("over-damped", "critically damped", "under-damped")


@figure("regimes", "Regimes of one eigendirection", size=(13.0, 5.0))
def _regimes(fig):
    """Left: the regime of the iteration for one eigenvalue over (ηλ, β): monotonic, ripples (a decaying
    spiral), oscillating, divergent, with the critical-damping curve and the stability edge. Right: one
    eigendirection (ηλ = {damping}, z₀ = 1) over-, critically and under-damped (the three points on
    the left).

    Formula: complex roots iff β > (1 − √(ηλ))² (critical damping at equality: a double root 1 − √(ηλ) =
    √β); divergent iff ηλ ≥ 2 + 2β.

    Reproduces: {goh}, the figure of the regimes (“the dynamics of momentum”).
    """
    left, right = fig.subplots(1, 2)
    plot.regime_map(ax=left)
    critical = (1 - np.sqrt(DAMPING_LR_LAM)) ** 2
    betas = np.array([0.05, critical, 0.8])
    result = run(Quadratic.diagonal([1.0]), Momentum(DAMPING_LR_LAM, betas), [1.0], 40, record="trajectory")
    labels = [f"{kind}, β = {b:.3g} ({analysis.regime(DAMPING_LR_LAM, b, 1.0)})"
              for kind, b in zip(DAMPING_KINDS, betas)]
    labels[1] = f"critically damped, β = (1 − √{DAMPING_LR_LAM:g})² = {critical:.3g}"
    plot.coordinates(result, labels, ax=right, ylabel=f"coordinate $z_t$ (λ = 1, η = {DAMPING_LR_LAM:g})",
                     markers=True)
    right.axhline(0.0, color="gray", linewidth=0.6)
    for i, (kind, b) in enumerate(zip(DAMPING_KINDS, betas)):
        left.plot([DAMPING_LR_LAM], [b], "o", color=PALETTE[i], markeredgecolor="white", markeredgewidth=1.5,
                  markersize=9)
        left.annotate(kind, (DAMPING_LR_LAM, b), xytext=(10, 0), textcoords="offset points", va="center",
                      fontsize="small", fontweight="bold", color="black")
    return [f"critical damping at ηλ = {DAMPING_LR_LAM:g}: β = (1 − √{DAMPING_LR_LAM:g})² = {critical:.4f}"]


@figure("terminal-velocity", "Terminal velocity and friction", size=(13.0, 4.6))
def _terminal_velocity(fig):
    """Left: under a constant gradient the step grows to 1/(1 − α) times the plain step (2×, 10×, 100× for α =
    0.5, 0.9, 0.99). Right: the heavy ball as a particle in f(x) = ½x² with viscous, turbulent and dry
    friction: only viscous drag (which is momentum) settles at the minimum.

    Formula: Goodfellow's vₜ = αvₜ₋₁ − εg, θₜ = θₜ₋₁ + vₜ: |vₜ| → ε‖g‖/(1 − α); particle: u ← u − dt(∇f +
    F(u)) with F = ku, ku|u| or a constant k against the motion.

    Reproduces: {goodfellow}, the terminal velocity and the viscous-drag argument.
    """
    left, right = fig.subplots(1, 2)
    plot.terminal_velocity((0.5, 0.9, 0.99), lr=0.1, ax=left)
    left.set_title("step under a constant gradient")
    plot.friction(ax=right)
    right.set_title("the heavy ball as a particle")
    dry = plot.particle("dry", 0.3, dt=0.1, steps=400)[-1]
    return [f"terminal velocity: {', '.join(f'{v:g}' for v in analysis.terminal_velocity(1, 1, [0.5, 0.9, 0.99]))} "
            f"times the step; dry friction stops the particle at x = {dry:.3f}"]


#: The schedule figure: lr 0.1, β 0.9 on f(θ) = θ, the learning rate divided by 10 at this step.
DROP_AT = 20


@figure("schedule-conventions", "Conventions under a learning-rate drop", size=(12.0, 4.4))
def _schedule_conventions(fig):
    """Momentum (lr 0.1, β 0.9) on f(θ) = θ (a constant gradient 1) with the learning rate divided by 10 at
    step {drop}: in the d2l and PyTorch form the new rate scales the whole velocity, so the step
    falls 10× at once; in the MXNet and Goodfellow form each past gradient keeps the rate of its step, so
    the step decays gradually. With the drop at step 2: θ₂ = −0.119 (d2l, PyTorch) against −0.200 (MXNet,
    Goodfellow).

    Formula: d2l/PyTorch: vₜ = βvₜ₋₁ + gₜ, θₜ = θₜ₋₁ − ηₜvₜ; MXNet: vₜ = βvₜ₋₁ + ηₜgₜ, θₜ = θₜ₋₁ − vₜ;
    Goodfellow: vₜ = αvₜ₋₁ − εₜgₜ, θₜ = θₜ₋₁ + vₜ.

    Reproduces: polyak.rules (the conventions' table); the frameworks' documented updates.
    """
    left, right = fig.subplots(1, 2)
    problem = Quadratic.diagonal([0.0], c=[1.0])
    conventions = {"d2l": "d2l", "torch": "PyTorch", "mxnet": "MXNet", "goodfellow": "Goodfellow"}
    steps = 60
    schedule = np.where(np.arange(steps) < DROP_AT, 1.0, 0.1)
    results = [run(problem, Momentum(0.1, 0.9, convention=c, schedule=schedule), [0.0], steps, record="trajectory")
               for c in conventions]
    thetas = [run(problem, Momentum(0.1, 0.9, convention=c, schedule=[1.0, 0.1]), [0.0], 2).x[0] for c in conventions]
    labels = [f"{name} (drop at step 2: θ₂ = {theta:.3f})".replace("-", "−")
              for name, theta in zip(conventions.values(), thetas)]
    plot.step_lengths(results, labels, ax=left, dashed=True, log=False)
    plot.coordinates(results, labels, ax=right, dashed=True, ylabel="$θ_t$")
    for ax in (left, right):
        ax.axvline(DROP_AT + 0.5, color="gray", linewidth=0.8, linestyle=":")
    left.set_title(f"step length (lr 0.1 → 0.01 after step {DROP_AT}); the pairs coincide")
    right.set_title("the iterate")
    left.set_ylim(0, None)
    return [f"schedule: θ₂ = {thetas[0]:.3f} (d2l, PyTorch) against {thetas[2]:.3f} (MXNet, Goodfellow)"]


@figure("rates-vs-kappa", "Optimal rates against the condition number")
def _rates_vs_kappa(fig):
    """1 − rate at the optimal constant parameters for gradient descent, heavy ball and Nesterov, κ from 1 to
    10⁶: gradient descent needs steps ∝ κ, momentum ∝ √κ.

    Formula: gradient descent (κ − 1)/(κ + 1); heavy ball (√κ − 1)/(√κ + 1); Nesterov (η = 1/L, β = (√κ −
    1)/(√κ + 1)) 1 − 1/√κ; each the spectral radius at those parameters.

    Reproduces: {goh}; Polyak (1964); Nesterov (1983).
    """
    plot.rate_curves(ax=fig.subplots())
    rates = {m: analysis.optimal_parameters(1e-4, 1.0, m)[2] for m in ("gd", "heavy_ball", "nesterov")}
    return ["rates at κ = 10⁴: " + ", ".join(f"{m} {r:.4f}" for m, r in rates.items())]


#: The sweep figure's spectrum and grid (60 × 60: a fraction of a second of kernel work).
SWEEP_SPECTRUM = np.geomspace(0.01, 1.0, 64)
SWEEP_GRID = dict(lr=np.geomspace(0.1, 4.0, 60), beta=np.linspace(0.0, 0.99, 60))


@figure("sweep", "A sweep: steps to tolerance over (η, β)", size=(7.2, 5.0))
def _sweep(fig):
    """polyak.sweep of heavy ball on a 64-eigenvalue spectrum, geometric from 0.01 to 1 (κ = 100), from x₀ = 1,
    1000 steps: the steps to reach f − f* ≤ 10⁻⁸ for 60 × 60 learning rates and momenta (light gray: never
    within the 1000 steps; dark gray: diverged), the theory's optimum and the sweep's best.

    Formula: f − f* = ½ Σ λᵢ eᵢ²; the theory's optimum η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))².

    Reproduces: polyak.sweep (this package); {goh}.
    """
    result = sweep(Quadratic.diagonal(SWEEP_SPECTRUM), 1000, tol=1e-8, progress=False, **SWEEP_GRID)
    plot.sweep_map(result, ax=fig.subplots())
    best = result.best()
    lr, beta, _ = analysis.optimal_parameters(*result.spectrum)
    return [f"sweep: best lr {best['lr']:.3g}, beta {best['beta']:.3g} ({best['steps_to_tol']} steps); "
            f"theory lr {lr:.3g}, beta {beta:.3g}"]


def paper_model():
    """The paper's model: 10⁴ directions with hᵢ = 1/i (c = h), binned log-uniformly into 100."""
    return nqm.NoisyQuadratic.binned(1 / np.arange(1, 10_001), bins=100)


#: The batch-size figure: batch sizes, the grid of learning rates, momenta, the preconditioning
#: power and the average's decay (smaller grids than the paper's, for a tour of seconds).
NQM_SIZES = 2 ** np.arange(2, 22)
NQM_LR = np.logspace(-4, 1, 40)
NQM_BETA = 1 - np.logspace(-3, 0, 10)
NQM_PRECONDITION = 0.5
NQM_EMA = 0.99
NQM_THRESHOLD = 0.01


def _ema_steps(model):
    """optimal_steps for SGD with the iterate average (d = NQM_EMA): the fewest steps over the
    stable learning rates, per batch size, from steps_to_loss."""
    lr = NQM_LR[NQM_LR <= 2.0]
    steps = nqm.steps_to_loss(model, NQM_THRESHOLD, lr=lr[:, None], batch_size=NQM_SIZES[None, :], ema=NQM_EMA,
                              max_steps=4_000_000)
    fewest = np.where(steps < 0, np.iinfo(np.int64).max, steps).argmin(axis=0)
    best = steps[fewest, np.arange(NQM_SIZES.size)]
    return nqm.OptimalSteps(NQM_SIZES, best, np.where(best < 0, np.nan, lr[fewest]), np.zeros(NQM_SIZES.size),
                            NQM_THRESHOLD)


@figure("nqm-steps", "Steps to a loss threshold against the batch size (noisy quadratic model)", size=(8.0, 5.2))
def _nqm_steps(fig):
    """The noisy quadratic model of the paper (10⁴ directions, hᵢ = 1/i, c = h, binned into 100): for each
    batch size b, the fewest steps to E[ℓ] ≤ 0.01 over a grid of 40 learning rates (and 10 momenta), for SGD,
    heavy ball, preconditioned SGD (P = H^−0.5) and SGD with an exponential moving average of the iterates
    (d = 0.99). Steps fall as 1/b up to the critical batch size (dotted, where b·steps doubles its minimum),
    then flatten; momentum and preconditioning raise it, and momentum does not help at small b.

    Formula: E[ℓ(θₜ)] = ½ Σ hᵢ (s0 φₜ² + σ² Sₜ) per direction, σ² = η² h^−2p c/b, from the 3×3 second-moment
    recursion; steps = min over (η, β) of min{{t : E[ℓ(θₜ)] ≤ 0.01}}.

    Reproduces: {nqm}, Figures 5 and 6 (momentum, preconditioning, exponential moving average).
    """
    model = paper_model()
    with np.errstate(over="ignore", invalid="ignore"):  # (unstable configurations of the grid overflow)
        curves = {"SGD": nqm.optimal_steps(model, NQM_THRESHOLD, batch_size=NQM_SIZES, lr=NQM_LR),
                  "heavy ball": nqm.optimal_steps(model, NQM_THRESHOLD, batch_size=NQM_SIZES, lr=NQM_LR,
                                                  beta=NQM_BETA),
                  f"preconditioned, p = {NQM_PRECONDITION:g}": nqm.optimal_steps(
                      model, NQM_THRESHOLD, batch_size=NQM_SIZES, lr=NQM_LR, precondition=NQM_PRECONDITION),
                  f"SGD + EMA, d = {NQM_EMA:g}": _ema_steps(model)}
    critical = [curve.critical_batch_size() for curve in curves.values()]
    labels = [f"{name} (critical b = {b})" for name, b in zip(curves, critical)]
    plot.nqm_steps(list(curves.values()), labels, ax=fig.subplots(), critical=critical)
    return [f"NQM: critical batch size {b} for {name}; {curve.steps[0]} steps at b = {NQM_SIZES[0]}"
            for name, b, curve in zip(curves, critical, curves.values())]


@figure("nqm-simulation", "The noisy quadratic model: exact expected loss against Monte Carlo", size=(8.0, 5.0))
def _nqm_simulation(fig):
    """A noisy quadratic with 100 directions hᵢ = 1/i (c = h), batch size 4, from E[θ₀²] = 1: the exact
    expected loss of SGD (η = 1) and of heavy ball (η = 0.1, β = 0.9, the same effective step η/(1 − β))
    against the mean of 200 simulated runs each, with a band of ± 2 standard errors, and the steady-state
    losses (the noise floors).

    Formula: E[θₜ²] = s0 φₜ² + σ² Sₜ per direction (3×3 second-moment recursion); steady state
    σ² (1 + β)/((1 − β) x (2 + 2β − x)) with x = ηh, σ² = η² c/b.

    Reproduces: {nqm}, the model of §3; simulate checks the closed form (polyak.nqm).
    """
    model = nqm.NoisyQuadratic(1 / np.arange(1, 101))
    simulation = simulate(model, 300, lr=np.array([1.0, 0.1]), beta=np.array([0.0, 0.9]), batch_size=4,
                          replicas=200, seed=0, every=5)
    plot.nqm_loss(model, simulation, ["SGD, η = 1", "heavy ball, η = 0.1, β = 0.9"], ax=fig.subplots())
    exact = nqm.expected_loss(model, simulation.t, lr=simulation.lr[:, None], beta=simulation.beta[:, None],
                              batch_size=4)
    worst = np.max(np.abs(simulation.mean - exact)[:, 1:] / simulation.stderr[:, 1:])
    return [f"NQM Monte Carlo: {simulation.replicas} runs per configuration, the mean within {worst:.1f} "
            f"standard errors of the exact loss at every record"]

#: The fields of the captions (see TourFigure.caption).
CAPTION_FIELDS = dict(d2l=D2L, goh=GOH, goodfellow=GOODFELLOW, nqm=NQM, damping=DAMPING_LR_LAM, drop=DROP_AT + 1)
