"""Sweeps past one process: stores that resume, Dask, Ctrl-C, progress, and ``polyak sweep``."""

import json
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

import polyak
from conftest import interrupt
from polyak import _sweep_run
from polyak.sweeps import METRICS

xarray = pytest.importorskip("xarray")
pytest.importorskip("zarr")
pytest.importorskip("h5netcdf")

PROBLEM = polyak.problems.ill_conditioned_2d()
GRID = dict(lr=np.linspace(0.01, 0.6, 40), beta=np.linspace(0.0, 0.99, 30), tol=1e-6, every=25, chunk_size=200)
RANDOM = dict(lr=np.random.default_rng(3).uniform(0.01, 0.6, 500), beta=np.random.default_rng(4).uniform(0, 0.99, 500),
              nesterov=np.arange(500) % 2 == 0, grid=False, tol=1e-4, chunk_size=64)
SUFFIXES = [".zarr", ".nc", ".npz"]


def assert_same_result(result, expected):
    assert result.dims == expected.dims and result.shape == expected.shape and result.steps == expected.steps
    for name in METRICS:
        got, want = getattr(result, name), getattr(expected, name)
        if want is None:
            assert got is None, name
        else:
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)  # bit for bit (NaN where NaN)
    assert set(result.coords) == set(expected.coords)
    for name, values in expected.coords.items():
        np.testing.assert_array_equal(result.coords[name], values)
    assert result.constants == expected.constants and result.tol == expected.tol


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("kind", ["grid", "random"])
def test_each_store_round_trips(tmp_path, suffix, kind):
    options = GRID if kind == "grid" else RANDOM
    expected = polyak.sweep(PROBLEM, 300, **options)
    path = tmp_path / f"sweep{suffix}"
    stored = polyak.sweep(PROBLEM, 300, store=path, **options)
    assert_same_result(stored, expected)
    assert_same_result(polyak.load_sweep(path), expected)
    assert stored.store == str(path) and stored.spectrum == (0.2, 4.0)
    assert stored.best() == expected.best()


def test_xarray_reads_the_stores_with_named_dimensions_and_coordinates(tmp_path):
    expected = polyak.sweep(PROBLEM, 300, **GRID)
    polyak.sweep(PROBLEM, 300, store=tmp_path / "a.zarr", **GRID)
    polyak.sweep(PROBLEM, 300, store=tmp_path / "a.nc", **GRID)
    for dataset in (xarray.open_zarr(tmp_path / "a.zarr"), xarray.open_dataset(tmp_path / "a.nc")):
        assert dataset["final_loss"].dims == ("lr", "beta") and dataset["loss"].dims == ("lr", "beta", "t")
        np.testing.assert_array_equal(dataset["lr"].values, GRID["lr"])
        np.testing.assert_array_equal(dataset["t"].values, np.arange(0, 301, 25))
        np.testing.assert_array_equal(dataset["steps_to_tol"].values, expected.steps_to_tol)
        np.testing.assert_array_equal(dataset["final_loss"].sel(lr=GRID["lr"][7]).values, expected.final_loss[7])
    random = xarray.open_zarr(polyak.sweep(PROBLEM, 300, store=tmp_path / "r.zarr", **RANDOM).store)
    assert random["final_loss"].dims == ("config",) and {"lr", "beta", "nesterov"} <= set(random.coords)


def test_the_same_sweep_with_its_store_computes_nothing_more(tmp_path, monkeypatch):
    path = tmp_path / "a.zarr"
    first = polyak.sweep(PROBLEM, 300, store=path, **GRID)
    calls = count_pieces(monkeypatch)
    again = polyak.sweep(PROBLEM, 300, store=path, **GRID)
    assert calls == [] and again.seconds == pytest.approx(first.seconds, abs=0.01)
    assert_same_result(again, first)


def count_pieces(monkeypatch):
    """The (lo, hi) of each piece computed from now on."""
    calls = []
    compute = _sweep_run.compute_piece

    def counted(spec, lo, hi):
        calls.append((lo, hi))
        return compute(spec, lo, hi)

    monkeypatch.setattr(_sweep_run, "compute_piece", counted)
    return calls


@pytest.mark.parametrize("change, message", [
    (dict(steps=301), "steps: 300 in the store, 301 here"),
    (dict(tol=1e-7), "tol: 1e-06 in the store, 1e-07 here"),
    (dict(lr=np.linspace(0.01, 0.61, 40)), "the axes' values differ"),
    (dict(problem=polyak.Quadratic.diagonal([0.2, 4.5])), "the problem .spectrum and start. differ"),
    (dict(convention="mxnet"), "convention: 'd2l' in the store, 'mxnet' here"),
])
def test_a_store_written_by_another_sweep_is_refused(tmp_path, change, message):
    path = tmp_path / "a.zarr"
    polyak.sweep(PROBLEM, 300, store=path, **GRID)
    options = {**GRID, **change}
    problem, steps = options.pop("problem", PROBLEM), options.pop("steps", 300)
    with pytest.raises(ValueError, match=f"written by a different sweep: .*{message}"):
        polyak.sweep(problem, steps, store=path, **options)


def test_a_file_that_is_not_a_store_is_refused_and_kept(tmp_path):
    foreign = tmp_path / "data.npz"
    np.savez(foreign, x=np.arange(3))
    with pytest.raises(ValueError, match="exists and is not a polyak sweep store"):
        polyak.sweep(PROBLEM, 10, store=foreign, lr=0.1)
    np.testing.assert_array_equal(np.load(foreign)["x"], np.arange(3))
    with pytest.raises(ValueError, match="must be a path ending in .zarr, .nc or .npz; got"):
        polyak.sweep(PROBLEM, 10, store=tmp_path / "a.csv", lr=0.1)
    with pytest.raises(FileNotFoundError, match="no sweep store at"):
        polyak.load_sweep(tmp_path / "missing.zarr")


# A sweep of 8 pieces of about a quarter of a second each on two cores (64 coordinates, long
# runs, none diverging: a diverged chunk would end early)
SLOW = """
import sys, numpy as np, polyak
problem = polyak.Quadratic.diagonal(np.geomspace(1e-3, 1, 64))
def slow(store, steps=300000, **extra):
    return polyak.sweep(problem, steps, lr=np.linspace(0.05, 1.0, 16), beta=np.linspace(0, 0.9, 100), tol=1e-9,
                        chunk_size=200, store=store, progress=False, **extra)
"""
PIECES = 8


def run_python(code):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(SLOW) + textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_pieces(process, path, count, seconds=60):
    """Until the sweep running in `process` has stored `count` pieces in `path`."""
    deadline = time.monotonic() + seconds
    while not (path / "piece_done").exists() or pieces_done(path) < count:
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)


def pieces_done(path):
    import zarr  # noqa: PLC0415
    return int(np.count_nonzero(zarr.open_group(path, mode="r")["piece_done"][...]))


def test_a_sweep_killed_part_way_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    path = tmp_path / "killed.zarr"
    process = run_python(f"slow({str(path)!r})")
    try:
        wait_for_pieces(process, path, 2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
    done = pieces_done(path)
    assert 2 <= done < PIECES
    namespace = {}
    exec(textwrap.dedent(SLOW), namespace)  # noqa: S102 -- the same sweep, in this process
    calls = count_pieces(monkeypatch)
    resumed = namespace["slow"](path)
    assert len(calls) == PIECES - done  # only the missing pieces
    uninterrupted = namespace["slow"](None)
    assert_same_result(resumed, uninterrupted)


def test_sigint_stops_a_sweep_within_seconds_keeping_the_pieces_done(tmp_path):
    path = tmp_path / "stopped.zarr"
    process = run_python(f"""
        print("ready", flush=True)
        try:
            slow({str(path)!r}, steps=3 * 10**6)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """)
    try:
        assert process.stdout.readline().strip() == "ready"
        wait_for_pieces(process, path, 1)
    finally:
        out, _, waited = interrupt(process)
    assert process.returncode == 3 and out.strip() == "interrupted" and waited < 3.0
    assert 1 <= pieces_done(path) < PIECES
    meta = json.loads(__import__("zarr").open_group(path, mode="r").attrs["polyak_sweep"])
    assert meta["complete"] is False
    with pytest.raises(ValueError, match="is incomplete .an interrupted sweep.: run the same sweep"):
        polyak.load_sweep(path)


def test_the_command_line_exits_130_on_sigint(tmp_path):
    command = [sys.executable, "-m", "polyak", "sweep", "--spectrum", "geom:64:1e-3:1", "--lr", "lin:0.05:1.0:16",
               "--beta", "lin:0:0.9:100", "--steps", "3000000", "--tol", "1e-9", "--chunk-size", "200", "--out",
               str(tmp_path / "cli.zarr"), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_pieces(process, tmp_path / "cli.zarr", 0)
        time.sleep(0.5)  # into the kernel
    finally:
        _, err, waited = interrupt(process)
    assert process.returncode == 130 and waited < 3.0
    assert err.strip() == "polyak: interrupted"


def test_dask_workers_give_the_local_result_bit_for_bit(tmp_path):
    distributed = pytest.importorskip("distributed")
    expected = polyak.sweep(PROBLEM, 300, **GRID)
    expected_random = polyak.sweep(PROBLEM, 300, **RANDOM)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert_same_result(polyak.sweep(PROBLEM, 300, client=client, **GRID), expected)
        assert_same_result(polyak.sweep(PROBLEM, 300, client=client, n_threads=1, **RANDOM), expected_random)
        stored = polyak.sweep(PROBLEM, 300, client=client, store=tmp_path / "dask.zarr", **GRID)
    assert_same_result(stored, expected)


def test_results_do_not_depend_on_the_pieces(tmp_path):
    expected = polyak.sweep(PROBLEM, 300, **GRID)
    for chunk_size in (1, 31, 10**6):
        assert_same_result(polyak.sweep(PROBLEM, 300, **{**GRID, "chunk_size": chunk_size}), expected)
    batch = polyak.Quadratic.diagonal(np.array([[0.2, 4.0], [0.5, 1.0], [1.0, 3.0]]))
    whole = polyak.sweep(batch, 100, lr=GRID["lr"], beta=GRID["beta"], tol=1e-6)
    pieces = polyak.sweep(batch, 100, lr=GRID["lr"], beta=GRID["beta"], tol=1e-6, chunk_size=7,
                          store=tmp_path / "batch.zarr")
    assert pieces.dims == ("problem", "lr", "beta")
    assert_same_result(pieces, whole)


def test_a_zarr_store_streams_instead_of_holding_the_results(tmp_path):
    lr, beta = np.linspace(0.01, 0.6, 1000), np.linspace(0.0, 0.99, 1000)  # 10⁶ configurations: 25 MB of metrics
    tracemalloc.start()
    try:
        result = polyak.sweep(PROBLEM, 20, lr=lr, beta=beta, tol=1e-3, chunk_size=2**15, store=tmp_path / "big.zarr")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12e6, f"peak {peak / 1e6:.1f} MB"
    assert result.shape == (1000, 1000) and np.isfinite(result.final_loss).mean() > 0.5  # loads when used


def test_progress_shows_a_bar_on_stderr(capsys):
    pytest.importorskip("tqdm")
    polyak.sweep(PROBLEM, 50, progress=True, **GRID)
    err = capsys.readouterr().err
    assert "sweep" in err and "1.20k/1.20k" in err and "piece 7/7" in err  # (chunk_size 200: 6 rows of 30 a piece, 40 rows)
    polyak.sweep(PROBLEM, 50, **GRID)  # a moment's work, stderr not a terminal: no bar
    assert capsys.readouterr().err == ""


def test_the_command_line_writes_the_store_the_api_would(tmp_path):
    path = tmp_path / "cli.nc"
    completed = subprocess.run([sys.executable, "-m", "polyak", "sweep", "--eigenvalues", "0.2,4", "--lr",
                                "log:0.01:1.8:50", "--beta", "lin:0:0.99:40", "--steps", "500", "--tol", "1e-6",
                                "--out", str(path), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    expected = polyak.sweep(polyak.Quadratic.diagonal([0.2, 4.0]), 500, lr=np.geomspace(0.01, 1.8, 50),
                            beta=np.linspace(0, 0.99, 40), tol=1e-6)
    assert_same_result(polyak.load_sweep(path), expected)
    lines = completed.stdout.splitlines()
    best, fastest = expected.best(), expected.best("rate")
    assert lines[0].startswith("grid: lr 50 (0.01 to 1.8) x beta 40 (0 to 0.99) = 2,000 configurations")
    assert f"steps_to_tol={best['steps_to_tol']}" in lines[2] and f"lr={best['lr']:.6g}" in lines[2]
    assert lines[3] == f"lowest rate: lr={fastest['lr']:.6g}, beta={fastest['beta']:.6g}, rate={fastest['rate']:.6g}"
    assert lines[4] == "theory (heavy ball on [0.2, 4]): lr=0.667907, beta=0.402605, rate=0.634512"
    assert lines[5] == f"diverged: {np.mean(expected.diverged):.2%}" and lines[6] == f"store: {path}"
    shown = subprocess.run([sys.executable, "-m", "polyak", "show", str(path)], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and shown.stdout.splitlines()[2:] == lines[2:]


@pytest.mark.parametrize("arguments, message", [
    (["--eigenvalues", "0.2,x", "--lr", "0.1", "--out", "a.zarr"], "'x' is not a number"),
    (["--eigenvalues", "0.2,4", "--lr", "log:0:1:10", "--out", "a.zarr"], "a geometric axis needs 0 < LO <= HI"),
    (["--eigenvalues", "0.2,4", "--lr", "lin:0.1:1", "--out", "a.zarr"], "has three fields"),
    (["--spectrum", "geom:0:1e-3:1", "--lr", "0.1", "--out", "a.zarr"], "must be a positive integer; got .0. .in"),
    (["--eigenvalues", "0.2,4", "--out", "a.zarr"], "the following arguments are required: --lr"),
    (["--lr", "0.1", "--out", "a.zarr"], "one of the arguments --eigenvalues --spectrum is required"),
    (["--eigenvalues", "0.2,4", "--lr", "0.1", "--out", "a.csv"], "must be a path ending in .zarr, .nc or .npz"),
    (["--eigenvalues", "0.2,4", "--lr", "-0.1", "--out", "a.zarr"], "lr must be > 0"),
    (["--eigenvalues", "0.2,4", "--lr", "0.1", "--beta", "1.5", "--out", "a.zarr"], "beta must be in .0, 1."),
    (["--eigenvalues", "0.2,4", "--lr", "0.1", "--tol", "0", "--out", "a.zarr"], "tol must be > 0"),
])
def test_bad_command_lines_exit_2_with_one_line(tmp_path, arguments, message):
    completed = subprocess.run([sys.executable, "-m", "polyak", "sweep", *arguments], capture_output=True, text=True,
                               timeout=60, cwd=tmp_path)
    assert completed.returncode == 2 and completed.stdout == ""
    assert len(completed.stderr.strip().splitlines()) == 1 and "Traceback" not in completed.stderr
    assert __import__("re").search(message, completed.stderr), completed.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_show_of_a_missing_or_foreign_store_exits_2(tmp_path):
    for path in (tmp_path / "missing.zarr", tmp_path / "a.txt"):
        completed = subprocess.run([sys.executable, "-m", "polyak", "show", str(path)], capture_output=True,
                                   text=True, timeout=60)
        assert completed.returncode == 2 and len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_result_read_from_a_store_pickles_and_loads_later(tmp_path, suffix):
    import pickle  # noqa: PLC0415
    expected = polyak.sweep(PROBLEM, 300, **GRID)
    polyak.sweep(PROBLEM, 300, store=tmp_path / f"a{suffix}", **GRID)
    copy = pickle.loads(pickle.dumps(polyak.load_sweep(tmp_path / f"a{suffix}")))  # before any metric is read
    assert_same_result(copy, expected)
    no_rate = polyak.sweep(PROBLEM, 20, lr=0.1, beta=GRID["beta"], schedule=np.linspace(1, 0.5, 20),
                           store=tmp_path / f"b{suffix}")
    assert no_rate.rate is None and no_rate.steps_to_tol is None and no_rate.loss is None


def test_one_configuration_into_each_store(tmp_path):
    expected = polyak.sweep(PROBLEM, 100, lr=0.1, beta=0.5, tol=1e-6, every=10)
    assert expected.shape == ()
    for suffix in SUFFIXES:
        assert_same_result(polyak.sweep(PROBLEM, 100, lr=0.1, beta=0.5, tol=1e-6, every=10,
                                        store=tmp_path / f"one{suffix}"), expected)


def test_an_empty_directory_or_a_missing_parent_is_a_new_store(tmp_path):
    expected = polyak.sweep(PROBLEM, 100, **GRID)
    (tmp_path / "empty.zarr").mkdir()
    assert_same_result(polyak.sweep(PROBLEM, 100, store=tmp_path / "empty.zarr", **GRID), expected)
    assert_same_result(polyak.sweep(PROBLEM, 100, store=tmp_path / "new" / "dir" / "a.nc", **GRID), expected)
    assert not list(tmp_path.rglob("*.partial"))
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a polyak sweep store"):
        polyak.load_sweep(tmp_path / "empty.npz")
    with pytest.raises(ValueError, match="exists and is not a polyak sweep store"):
        polyak.sweep(PROBLEM, 100, store=tmp_path / "empty.npz", **GRID)


def test_a_store_of_another_instruction_set_level_is_refused(tmp_path):
    from polyak._config import supported_levels  # noqa: PLC0415
    levels = supported_levels()
    if len(levels) < 2:
        pytest.skip("this CPU runs one level only")
    path = tmp_path / "level.zarr"
    here = polyak.show_config(print_out=False)["cpu_level"]
    other = next(level for level in levels if level != here)
    code = f"import numpy as np, polyak; polyak.sweep(polyak.problems.ill_conditioned_2d(), 50, lr=0.1, store={str(path)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env={**__import__("os").environ, "POLYAK_CPU_LEVEL": other})
    with pytest.raises(ValueError, match=f"instruction-set level: '{other}' in the store, '{here}' here"):
        polyak.sweep(PROBLEM, 50, lr=0.1, store=path)
