"""The command line: ``python -m polyak`` (or ``polyak``).

``python -m polyak``            the textbook's 2D experiments, as the textbook prints them
``python -m polyak config``     the build's configuration (polyak.show_config)
"""

import argparse

import numpy as np

from polyak._config import show_config
from polyak.analysis import spectral_radius
from polyak.problems import ill_conditioned_2d
from polyak.rules import GD, Momentum
from polyak.solve import run

#: The textbook's runs on f(x) = 0.1x₁² + 2x₂² (Dive into Deep Learning, "Momentum").
TEXTBOOK_RUNS = (
    ("gradient descent, lr 0.4", GD(0.4)),
    ("gradient descent, lr 0.6", GD(0.6)),
    ("momentum, lr 0.6, beta 0.5", Momentum(0.6, 0.5)),
    ("momentum, lr 0.6, beta 0.25", Momentum(0.6, 0.25)),
    ("momentum (MXNet convention), lr 0.4, gamma 0.5", Momentum(0.4, 0.5, convention="mxnet")),
)
TEXTBOOK_START = (-5.0, -2.0)
TEXTBOOK_STEPS = 20


def textbook_table(steps=TEXTBOOK_STEPS, start=TEXTBOOK_START):
    """The end points of the textbook's runs as text lines, each marked when it diverges.

    A run diverges when the spectral radius of its iteration matrix exceeds 1 for some
    eigenvalue of the problem (then |x| grows without bound, whatever `steps` shows).
    """
    problem = ill_conditioned_2d()
    lines = [
        f"f(x) = 0.1*x1^2 + 2*x2^2 from x0 = {start}, {steps} steps",
        "",
    ]
    rows = []
    for name, rule in TEXTBOOK_RUNS:
        x1, x2 = run(problem, rule, start, steps).x
        rate = np.max(spectral_radius(rule.lr, rule.beta, problem.lam[0], nesterov=rule.nesterov))
        verdict = f"diverges (rate {rate:.4f} > 1)" if rate > 1 else f"converges (rate {rate:.4f})"
        rows.append((name, f"epoch {steps}, x1: {x1:f}, x2: {x2:f}", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines += [f"{name:<{widths[0]}}  {end:<{widths[1]}}  {verdict}" for name, end, verdict in rows]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="polyak", description="The momentum method on quadratics.")
    parser.add_argument("command", nargs="?", default="textbook", choices=["textbook", "config"],
                        help="textbook: the textbook's 2D experiments (default); config: the build")
    parser.add_argument("--steps", type=int, default=TEXTBOOK_STEPS, help="steps of each run (default 20)")
    args = parser.parse_args(argv)
    if args.command == "config":
        show_config()
        return 0
    if args.steps < 0:
        parser.error(f"--steps must be >= 0; got {args.steps}")
    print("\n".join(textbook_table(args.steps)))
    return 0
