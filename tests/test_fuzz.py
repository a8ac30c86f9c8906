"""A fuzz of the public API, as a new user would try it.

Every public entry point is called with valid arguments, and then with each argument in turn
replaced by values a user might pass by mistake (NaN, inf, negative, zero, huge, tiny,
booleans, strings, None, complex numbers, wrong shapes, huge integers). Each call runs in a
worker subprocess (tests/_fuzz_worker.py) under a timeout, and must either return a result
without NaN (a diverged run keeps its last finite iterate) or raise ValueError, TypeError or
MemoryError whose message names the argument; never hang, crash the process, or change an
input. Random valid runs (hypothesis) hold the run's invariants.
"""

import os
import pickle
import select
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import polyak

WORKER = Path(__file__).with_name("_fuzz_worker.py")
TIMEOUT = 30.0  # seconds per call: generous for a loaded CI machine; a hang takes forever
ALLOWED = ("ValueError", "TypeError", "MemoryError")

#: Values a user might pass by mistake, by name.
BAD = {
    "nan": np.nan, "inf": np.inf, "-inf": -np.inf, "negative": -1.0, "zero": 0, "huge": 1e308,
    "tiny": 1e-320, "true": True, "text": "x", "none": None, "complex": 1 + 1j, "empty": [],
    "2**70": 2**70, "cube": np.ones((2, 3, 4)), "nan-array": np.array([1.0, np.nan]),
}


def _entries():
    """(target, positional names, valid arguments by name): the public API under test."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    problem = polyak.problems.ill_conditioned_2d()
    momentum = polyak.Momentum(0.1, 0.5)
    Q = np.array([[2.0, 0.5], [0.5, 1.0]])
    return [
        ("polyak.run", ("problem", "rule", "x0", "steps"),
         dict(problem=problem, rule=momentum, x0=np.array([-5.0, -2.0]), steps=300, v0=None, record="loss",
              every=7, n_threads=None, dtype=None, divergence_bound=None, implementation="kernel")),
        ("polyak.plan", ("problem", "rule", "x0", "steps"),
         dict(problem=problem, rule=momentum, x0=np.array([1.0, 1.0]), steps=10, record="trajectory", every=3)),
        ("polyak.Quadratic.diagonal", ("lam",), dict(lam=np.array([1.0, 2.0]), c=np.array([0.5, 0.0]), b=1.0)),
        ("polyak.Quadratic.dense", ("Q",), dict(Q=Q, c=np.array([0.5, 0.0]), b=1.0)),
        ("polyak.GD", ("lr",), dict(lr=0.1, schedule=np.ones(5))),
        ("polyak.Momentum", ("lr", "beta"),
         dict(lr=0.1, beta=0.9, convention="torch", dampening=0.1, nesterov=False, schedule=None)),
        ("polyak.analysis.spectral_radius", ("lr", "beta", "lam"),
         dict(lr=0.1, beta=0.5, lam=np.array([1.0, 4.0]), convention="d2l", nesterov=False, dampening=0.0)),
        ("polyak.analysis.converges", ("lr", "beta", "lam"), dict(lr=0.1, beta=0.5, lam=2.0)),
        ("polyak.analysis.regime", ("lr", "beta", "lam"), dict(lr=0.1, beta=0.5, lam=2.0)),
        ("polyak.analysis.optimal_parameters", ("mu", "L"), dict(mu=0.1, L=10.0, method="heavy_ball")),
        ("polyak.analysis.effective_sample_size", ("beta",), dict(beta=0.9)),
        ("polyak.analysis.effective_weights", ("beta", "t"), dict(beta=0.9, t=20)),
        ("polyak.analysis.terminal_velocity", ("lr", "grad_norm", "beta"), dict(lr=0.1, grad_norm=2.0, beta=0.9)),
        ("polyak.analysis.minimizer", ("Q",), dict(Q=Q, c=np.array([1.0, 1.0]), b=0.0)),
        ("polyak.analysis.iteration_matrix", ("rule", "lam"), dict(rule=momentum, lam=np.array([1.0, 2.0]))),
        ("polyak.analysis.rate", ("problem", "rule"), dict(problem=problem, rule=momentum)),
        ("polyak.analysis.exact_iterates", ("problem", "rule", "x0", "steps"),
         dict(problem=problem, rule=momentum, x0=np.array([1.0, 1.0]), steps=1000, record="loss", every=100)),
        ("polyak.train.linear_regression", ("X", "y", "rule"),
         dict(X=X, y=X @ [1.0, 2.0, 3.0], rule=polyak.Momentum(0.05, 0.9), batch_size=8, epochs=2, seed=0,
              record_every=40)),
        ("SGD.step", ("params", "grads"),
         dict(params=[np.ones(3), np.ones((2, 2), np.float32)], grads=[np.ones(3), np.ones((2, 2), np.float32)],
              lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True)),
        ("SGD.load_state_dict", ("params", "state"),
         dict(params=[np.ones(3)], state={"convention": "torch", "steps": 1, "momentum_buffers": [np.ones(3)],
                                          "hyperparameters": dict(lr=0.1, momentum=0.9, dampening=0.0,
                                                                  weight_decay=0.0, nesterov=False,
                                                                  maximize=False)})),
    ]


def _cases():
    """(id, target, args, kwargs, corrupted argument or None)."""
    cases = []
    for target, positional, valid in _entries():
        def call(arguments, target=target, positional=positional):
            args = tuple(arguments[name] for name in positional)
            kwargs = {k: v for k, v in arguments.items() if k not in positional}
            return args, kwargs
        cases.append((f"{target}(valid)", target, *call(valid), None))
        for name in valid:
            for label, bad in BAD.items():
                cases.append((f"{target}({name}={label})", target, *call({**valid, name: bad}), name))
    return cases


CASES = _cases()


class _Worker:
    """The fuzz worker subprocess, restarted after a crash or a hang."""

    def __init__(self):
        self.process = None

    def start(self):
        env = {**os.environ, "OMP_NUM_THREADS": "2"}
        self.process = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env)

    def call(self, target, args, kwargs):
        """(outcome, changed), or ("hang",) / ("crash", returncode)."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        message = pickle.dumps((target, args, kwargs))
        self.process.stdin.write(struct.pack("<Q", len(message)) + message)
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], TIMEOUT)
        if not ready:
            self.process.kill()
            self.process.wait()
            return ("hang",), False
        header = self.process.stdout.read(8)
        if len(header) < 8:
            code = self.process.wait()
            return ("crash", code), False
        (size,) = struct.unpack("<Q", header)
        return pickle.loads(self.process.stdout.read(size))

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = _Worker()
    yield w
    w.stop()


def _verdict(outcome, changed, corrupted):
    """None when the call behaved, else what went wrong."""
    if changed:
        return "changed an input"
    if outcome[0] in ("hang", "crash"):
        return f"{outcome[0]} {outcome[1:] or ''}".strip()
    if outcome[0] == "ok":
        return f"NaN in {outcome[1]}" if outcome[1] else None
    _, kind, message = outcome
    if kind not in ALLOWED:
        return f"raised {kind}: {message}"
    if corrupted is None:
        return f"the valid call raised {kind}: {message}"
    if corrupted not in message:
        return f"raised {kind} without naming {corrupted!r}: {message}"
    return None


def test_every_public_call_returns_or_raises_a_clear_error(worker):
    failures = []
    for case_id, target, args, kwargs, corrupted in CASES:
        outcome, changed = worker.call(target, args, kwargs)
        problem = _verdict(outcome, changed, corrupted)
        if problem:
            failures.append(f"{case_id}: {problem}")
    assert len(CASES) > 400
    assert not failures, f"{len(failures)} of {len(CASES)} calls misbehaved:\n" + "\n".join(failures)


def test_the_fuzz_harness_sees_hangs_crashes_and_changed_inputs(worker, monkeypatch):
    # the harness itself must be able to fail: a call that hangs, one that kills the
    # process, one that writes into its input, and an error that names nothing
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT", 2.0)
    assert worker.call("time.sleep", (60,), {})[0] == ("hang",)
    outcome, _ = worker.call("os.abort", (), {})
    assert outcome[0] == "crash"
    array = np.ones(3)
    outcome, changed = worker.call("numpy.copyto", (array, 2.0), {})
    assert changed and _verdict(outcome, changed, None) == "changed an input"
    assert _verdict(("raised", "ValueError", "bad input"), False, "lr") == "raised ValueError without naming 'lr': bad input"
    assert _verdict(("raised", "IndexError", "lr"), False, "lr").startswith("raised IndexError")


@given(lam=st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=70), lr=st.floats(1e-6, 1e3),
       beta=st.floats(0.001, 0.999), steps=st.integers(0, 1000), variant=st.sampled_from(["d2l", "nesterov", "torch"]),
       start=st.floats(-1e6, 1e6))
def test_random_runs_keep_their_invariants(lam, lr, beta, steps, variant, start):
    rule = polyak.Momentum(lr, beta, convention="torch" if variant == "torch" else "d2l", nesterov=variant == "nesterov")
    problem = polyak.Quadratic.diagonal(lam)
    result = polyak.run(problem, rule, np.full(len(lam), start), steps, record="loss")
    assert np.all(np.isfinite(result.x)) and np.all(np.abs(result.x) <= 1e100)
    assert 0 <= result.steps_taken <= steps
    assert result.diverged_at == (result.steps_taken + 1 if result.diverged else -1)
    assert bool(result.unstable) == (polyak.analysis.rate(problem, rule) > 1)
    if result.diverged:  # without a linear term, growth to 1e100 needs a spectral radius above 1
        assert result.unstable
    kept = result.recorded_at <= result.steps_taken
    assert np.all(np.isfinite(result.loss[kept])) and np.all(np.isnan(result.loss[~kept]))
