"""``polyak sweep`` and ``polyak show``: a sweep from the command line into a store, and the
summary of a store (see polyak.cli)."""

import argparse

import numpy as np

from polyak.analysis import optimal_parameters
from polyak.problems import Quadratic
from polyak.sweeps import load_sweep, sweep

SPACINGS = {"log": np.geomspace, "geom": np.geomspace, "lin": np.linspace}


def axis(text):
    """An axis of values: ``log:LO:HI:N`` (geometric), ``lin:LO:HI:N`` or a comma list."""
    kind, _, rest = text.partition(":")
    if kind in SPACINGS and rest:
        parts = rest.split(":")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"{kind}:LO:HI:N has three fields after '{kind}:'; got {text!r}")
        low, high, count = _number(parts[0], text), _number(parts[1], text), _count(parts[2], text)
        return _spaced(kind, low, high, count, text)
    return np.array([_number(part, text) for part in text.split(",")])


def spectrum(text):
    """Eigenvalues: ``geom:N:LO:HI`` or ``lin:N:LO:HI``."""
    kind, _, rest = text.partition(":")
    parts = rest.split(":")
    if kind not in SPACINGS or len(parts) != 3:
        raise argparse.ArgumentTypeError(f"a spectrum is geom:N:LO:HI or lin:N:LO:HI; got {text!r}")
    return _spaced(kind, _number(parts[1], text), _number(parts[2], text), _count(parts[0], text), text)


def eigenvalues(text):
    """Eigenvalues as a comma list."""
    return np.array([_number(part, text) for part in text.split(",")])


def _spaced(kind, low, high, count, text):
    if kind != "lin" and not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"a geometric axis needs 0 < LO <= HI; got {text!r}")
    return SPACINGS[kind](low, high, count)


def _number(part, text):
    try:
        value = float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{part!r} is not a number (in {text!r})") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"{part!r} is not finite (in {text!r})")
    return value


def _count(part, text):
    try:
        count = int(part)
    except ValueError:
        count = 0
    if count < 1:
        where = f" (in {text!r})" if text != part else ""
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {part!r}{where}")
    return count


def _positive_int(text):
    return _count(text, text)


def add_commands(commands):
    """The `sweep` and `show` subcommands, on argparse's subparsers `commands`."""
    command = commands.add_parser("sweep", help="a grid of (lr, beta) on a diagonal quadratic, into a store",
                                  description="Sweep learning rate x momentum on f = 1/2 sum(lambda_i x_i^2) from "
                                              "x0 = ones; write the metrics to a store and print a summary. Axes: "
                                              "log:LO:HI:N, lin:LO:HI:N or a comma list.")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--eigenvalues", type=eigenvalues, help="the spectrum as a comma list, e.g. 0.2,4")
    source.add_argument("--spectrum", type=spectrum, help="geom:N:LO:HI or lin:N:LO:HI, e.g. geom:64:1e-3:1")
    command.add_argument("--lr", type=axis, required=True, help="learning rates, e.g. log:0.01:1.8:1000")
    command.add_argument("--beta", type=axis, default=np.array([0.0]), help="momenta, e.g. lin:0:0.99:1000")
    command.add_argument("--nesterov", action="store_true", help="Nesterov's momentum")
    command.add_argument("--convention", default="d2l", help="the update's convention (default d2l)")
    command.add_argument("--steps", type=_positive_int, default=1000, help="steps (default 1000)")
    command.add_argument("--tol", type=float, help="track the first step with f - f* <= TOL")
    command.add_argument("--out", required=True, help="the store: a path ending in .zarr, .nc or .npz")
    command.add_argument("--scheduler", help="a Dask scheduler's address, e.g. tcp://host:8786")
    command.add_argument("--chunk-size", type=_positive_int, help="configurations per piece")
    command.add_argument("--threads", type=_positive_int, help="threads (with --scheduler: per task, default 1)")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    command.set_defaults(func=_sweep)
    show = commands.add_parser("show", help="the summary of a sweep's store")
    show.add_argument("path", help="a store written by polyak sweep or polyak.sweep(..., store=)")
    show.set_defaults(func=_show)


def _sweep(args):
    lam = args.eigenvalues if args.eigenvalues is not None else args.spectrum
    problem = Quadratic.diagonal(lam)
    options = dict(lr=args.lr, beta=args.beta, nesterov=bool(args.nesterov), convention=args.convention,
                   tol=args.tol, n_threads=args.threads, chunk_size=args.chunk_size, store=args.out,
                   progress=False if args.no_progress else None)
    if args.scheduler:
        try:
            from distributed import Client  # noqa: PLC0415 -- optional
        except ImportError as error:
            raise ImportError("--scheduler needs dask.distributed: pip install 'polyak[sweep]'") from error
        with Client(args.scheduler) as client:
            result = sweep(problem, args.steps, client=client, **options)
    else:
        result = sweep(problem, args.steps, **options)
    print("\n".join(summary(result)))
    return 0


def _show(args):
    result = load_sweep(args.path)
    print("\n".join(summary(result)))
    return 0


def summary(result):
    """Lines describing a sweep: its grid, its time, the best configuration and the one of
    lowest rate beside the theory's optimum for heavy ball on the spectrum's range, the
    fraction that diverged."""
    axes = " x ".join(f"{dim} {len(result.coords[dim])} ({_range(result.coords[dim])})" for dim in result.dims
                      if dim != "config") or f"{result.size} configurations"
    fixed = ", ".join(f"{name}={value}" for name, value in result.constants.items())
    tol = f", tol={result.tol:g}" if result.tol is not None else ""
    lines = [f"grid: {axes} = {result.size:,} configurations{', ' + fixed if fixed else ''}, "
             f"T={result.steps}{tol}"]
    rate = result.size / result.seconds if result.seconds > 0 else float("inf")
    lines.append(f"time: {result.seconds:.3g} s computing, {rate:,.0f} configurations/s")
    best = result.best("steps_to_tol" if result.tol is not None else "final_loss")
    lines.append("best: " + (", ".join(f"{k}={_short(v)}" for k, v in best.items()) if best else "no configuration "
                                                                                                   "reached tol"))
    if result.rate is not None:
        fastest = result.best("rate")
        shown = {name: fastest[name] for name in ("lr", "beta", "rate") if name in fastest}
        lines.append("lowest rate: " + ", ".join(f"{k}={_short(v)}" for k, v in shown.items()))
    if result.spectrum is not None:
        mu, L = result.spectrum
        lr, beta, contraction = optimal_parameters(mu, L)
        lines.append(f"theory (heavy ball on [{mu:g}, {L:g}]): lr={lr:.6g}, beta={beta:.6g}, rate={contraction:.6g}")
    lines.append(f"diverged: {np.mean(result.diverged):.2%}")
    if result.store:
        lines.append(f"store: {result.store}")
    return lines


def _range(values):
    values = np.asarray(values)
    if values.dtype == bool or values.size == 1:
        return ",".join(str(v) for v in values.tolist())
    return f"{values.min():g} to {values.max():g}"


def _short(value):
    return f"{value:.6g}" if isinstance(value, float) else str(value)
