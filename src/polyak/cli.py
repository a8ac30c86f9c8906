"""The command line: ``python -m polyak`` (or ``polyak``), with subcommands.

``polyak [--steps T]``          the textbook's 2D experiments (as ``polyak textbook``)
``polyak textbook [--steps T]`` the textbook's 2D experiments, as the textbook prints them
``polyak config``               the build's configuration (polyak.show_config)
``polyak sweep ...``            a grid of (lr, beta) into a store, and its summary (``--help``)
``polyak show PATH``            the summary of a sweep's store
``polyak tour [--out DIR]``     every figure as PNG + SVG, an index.html and a summary (polyak[plot])

Each subcommand is a function taking the parsed arguments (``set_defaults(func=...)``), so
a new one is a parser and a function.
"""

import argparse
import sys

from polyak._cli_sweep import add_commands as add_sweep_commands
from polyak._config import show_config
from polyak._tour import add_command as add_tour_command
from polyak.analysis import rate
from polyak.plans import MAX_STEPS
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
    eigenvalue of the problem (then |x| grows without bound, whatever `steps` shows). A run
    that passes the divergence bound stops there: its row says so and shows the last
    iterate within the bound.
    """
    problem = ill_conditioned_2d()
    lines = [
        f"f(x) = 0.1*x1^2 + 2*x2^2 from x0 = {start}, {steps} steps",
        "",
    ]
    rows = []
    for name, rule in TEXTBOOK_RUNS:
        result = run(problem, rule, start, steps)
        x1, x2 = result.x
        radius = rate(problem, rule)
        verdict = f"diverges (rate {radius:.4f} > 1)" if radius > 1 else f"converges (rate {radius:.4f})"
        where = (f"stopped at step {result.steps_taken} (step {result.diverged_at} passed the divergence bound)"
                 if result.diverged else f"epoch {steps}")
        rows.append((name, f"{where}, x1: {_number(x1)}, x2: {_number(x2)}", verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines += [f"{name:<{widths[0]}}  {end:<{widths[1]}}  {verdict}" for name, end, verdict in rows]
    return lines


def _number(value):
    # as the textbook prints (%f), and in scientific notation where that would be long
    return f"{value:f}" if abs(value) < 1e6 else f"{value:.6e}"


def _textbook(args):
    print("\n".join(textbook_table(args.steps)))
    return 0


def _config(args):
    show_config()
    return 0


def _non_negative(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_STEPS} (2**62); got {text!r}") from None
    if not 0 <= value <= MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_STEPS} (2**62); got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (with where to find the usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")


def parser():
    """The argument parser, one subparser per command."""
    steps = _Parser(add_help=False)  # the textbook's option, with or without its name
    steps.add_argument("--steps", type=_non_negative, default=TEXTBOOK_STEPS,
                       help=f"steps of each textbook run (default {TEXTBOOK_STEPS})")
    top = _Parser(prog="polyak", description="The momentum method on quadratics.", parents=[steps])
    commands = top.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    textbook = commands.add_parser("textbook", parents=[steps], help="the textbook's 2D experiments (the default)")
    textbook.set_defaults(func=_textbook)
    config = commands.add_parser("config", help="the build's configuration")
    config.set_defaults(func=_config)
    add_sweep_commands(commands)
    add_tour_command(commands)
    top.set_defaults(func=_textbook)
    return top


def main(argv=None):
    """Run the command line; returns the exit status (2 for bad input, 130 for Ctrl-C)."""
    command = parser()
    args = command.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, MemoryError, RuntimeError, ImportError, OSError) as error:
        command.exit(2, f"{command.prog}: error: {error}\n")
    except KeyboardInterrupt:
        print(f"{command.prog}: interrupted", file=sys.stderr)
        return 130
