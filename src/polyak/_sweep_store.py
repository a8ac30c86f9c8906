"""Where a sweep's metrics go: memory, or a store on disk that a later call resumes.

- ``.zarr`` (Zarr v3, through the ``zarr`` package): each piece is written as its own chunk
  the moment it is computed (by a writer thread, so that storing overlaps the next piece),
  then marked done in the array ``piece_done``. Zarr writes each chunk to a temporary file
  and renames it, so a killed process leaves no half-written chunk: at most the pieces in
  flight are lost, and the same call again computes only the pieces not marked done.
- ``.nc`` (netCDF-4 through xarray and h5netcdf) and ``.npz`` (NumPy): written once, at the
  end, to a temporary file renamed into place; a complete store is returned as it is.

Every store records what produced it (the attribute or entry ``polyak_sweep``, JSON): the
sweep's identity (the problem's and the axes' digests, steps, tol, convention, the schedule,
polyak's version...) and its layout. A store whose identity differs from the sweep's is
refused, with the differences (the kernels' instruction-set level is part of the identity: levels
may round differently). ``xarray.open_zarr`` reads the .zarr stores and ``xarray.open_dataset``
the .nc ones: named dimensions, the axes as coordinates; in a Zarr store being filled, pieces not
yet computed read as the fill values (NaN, and the smallest int64 in ``steps_to_tol``).
"""

import hashlib
import json
import os
import queue
import shutil
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np

from polyak._sweep_result import METRICS, SweepResult
from polyak._version import __version__

SUFFIXES = (".zarr", ".nc", ".npz")
_ATTRIBUTE = "polyak_sweep"
_NOT_COMPUTED = {"final_loss": np.nan, "steps_to_tol": np.iinfo(np.int64).min, "diverged": False, "rate": np.nan,
                 "loss": np.nan}
_DTYPES = {"final_loss": np.float64, "steps_to_tol": np.int64, "diverged": bool, "rate": np.float64,
           "loss": np.float64}


def _digest(array):
    array = np.ascontiguousarray(array)
    data = f"{array.dtype.str}{array.shape}".encode() + array.tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def identity(spec, convention, dampening):
    """What makes two sweeps the same sweep (JSON-able): a store is resumed only by its own."""
    return {"polyak": __version__, "problem": _digest(np.concatenate([spec.lam, spec.e0], axis=1)),
            "dims": list(spec.dims), "shape": list(spec.shape),
            "axes": {name: _digest(values) for name, values in sorted(spec.coords.items())},
            "constants": {name: value for name, value in sorted(spec.constants.items())},
            "grid": spec.grid, "steps": spec.steps, "tol": spec.tol, "every": spec.every, "level": spec.level,
            "convention": convention, "dampening": dampening, "schedule": _digest(spec.multipliers)}


def _differences(stored, wanted):
    names = {"problem": "the problem (spectrum and start)", "axes": "the axes' values", "schedule": "the schedule",
             "polyak": "polyak's version", "level": "the kernels' instruction-set level"}
    lines = []
    for key in sorted(set(stored) | set(wanted)):
        if stored.get(key) != wanted.get(key):
            if key in ("problem", "axes", "schedule"):
                lines.append(f"{names[key]} differ")
            else:
                lines.append(f"{names.get(key, key)}: {stored.get(key)!r} in the store, {wanted.get(key)!r} here")
    return lines


def kind_of(path):
    """The store kind from the path's suffix; a ValueError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"store must be a path ending in .zarr, .nc or .npz; got {str(path)!r}")
    return suffix


class MemorySink:
    """The whole result in memory, a piece at a time."""

    def __init__(self, spec, layout):
        self.spec, self.layout = spec, layout
        self.arrays = {}

    def __call__(self, i, metrics):
        lo, hi = self.layout[i]
        for name, values in metrics.items():
            if len(self.layout) == 1:  # (the one piece is the whole result: kept, not copied)
                self.arrays[name] = values
                continue
            if name not in self.arrays:
                self.arrays[name] = np.empty((self.spec.size,) + values.shape[1:], values.dtype)
            self.arrays[name][lo:hi] = values

    def result(self, seconds):
        spec = self.spec
        shaped = {name: self.arrays[name].reshape(spec.shape + self.arrays[name].shape[1:])
                  if name in self.arrays else None for name in METRICS}
        return _result(spec.dims, spec.shape, spec.coords, spec.constants, spec.steps, spec.tol, spec.every, seconds,
                       shaped, None, spec.extremes)


def _result(dims, shape, coords, constants, steps, tol, every, seconds, metrics, store, spectrum):
    recorded_at = np.arange(0, steps + 1, every, dtype=np.int64) if every else np.zeros(0, np.int64)
    return SweepResult(dims=tuple(dims), coords=coords, constants=constants, steps=steps, tol=tol, seconds=seconds,
                       recorded_at=recorded_at, shape=tuple(shape), store=store, spectrum=spectrum, **metrics)


def open_store(path, spec, wanted, rows):
    """The store at `path` for this sweep: new (with `rows` rows per piece), or the existing
    one if it was written by the same sweep (then with its own layout)."""
    kind = kind_of(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # (before computing: a .nc is written at the end)
    if kind == ".zarr" and path.is_dir() and not any(path.iterdir()):
        path.rmdir()  # an empty directory: a new store
    store = (_ZarrStore if kind == ".zarr" else _FileStore)(path, kind)
    store.attach(spec, wanted, rows)
    return store


def _meta(spec, wanted, rows, pieces, seconds=0.0, complete=False):
    return {"format": 1, "identity": wanted, "rows_per_piece": rows, "pieces": pieces, "seconds": seconds,
            "complete": complete, "dims": list(spec.dims), "shape": list(spec.shape), "steps": spec.steps,
            "tol": spec.tol, "every": spec.every, "constants": spec.constants, "spectrum": spec.extremes,
            "metrics": [name for name in METRICS if _has(spec, name)]}


def _check_identity(path, meta, wanted):
    if meta is None:
        raise ValueError(f"{path} exists and is not a polyak sweep store: choose another path")
    differences = _differences(meta["identity"], wanted)
    if differences:
        raise ValueError(f"the store {path} was written by a different sweep: " + "; ".join(differences)
                         + " (use another path, or remove it to start over)")


class _FileStore:
    """.nc or .npz: the result in memory, written at the end."""

    def __init__(self, path, kind):
        self.path, self.kind = path, kind

    def attach(self, spec, wanted, rows):
        from polyak._sweep_run import pieces  # noqa: PLC0415 -- (a cycle otherwise)
        self.spec, self.wanted, self.rows = spec, wanted, rows
        self.layout = pieces(spec, rows)
        self.complete = None
        if self.path.exists():
            meta = _read_meta(self.path, self.kind)
            _check_identity(self.path, meta, wanted)
            self.complete = load_sweep(self.path)
        self.done = set(range(len(self.layout))) if self.complete is not None else set()
        self.sink = MemorySink(spec, self.layout)

    def __call__(self, i, metrics):
        self.sink(i, metrics)

    def finish(self, seconds, interrupted=False):
        if self.complete is not None or interrupted:
            return
        result = self.sink.result(seconds)
        meta = _meta(self.spec, self.wanted, self.rows, len(self.layout), seconds, complete=True)
        temporary = self.path.with_name(self.path.name + f".{os.getpid()}.partial")
        try:
            (_write_netcdf if self.kind == ".nc" else _write_npz)(temporary, result, meta)
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)

    def result(self):
        return self.complete if self.complete is not None else load_sweep(self.path)


def _write_netcdf(path, result, meta):
    dataset = result.to_xarray()
    dataset.attrs = {_ATTRIBUTE: json.dumps(meta)}
    dataset.to_netcdf(path, engine="h5netcdf")


def _write_npz(path, result, meta):
    arrays = {name: getattr(result, name) for name in METRICS if getattr(result, name) is not None}
    arrays.update({f"coord_{name}": values for name, values in result.coords.items()})
    with open(path, "wb") as handle:
        np.savez(handle, **arrays, **{_ATTRIBUTE: np.array(json.dumps(meta))})


class _ZarrStore:
    """.zarr: each piece a chunk, written as it completes (by a writer thread), then marked done."""

    def __init__(self, path, kind):
        self.path, self.kind = path, kind
        self.zarr = _require("zarr", "a .zarr store")

    def attach(self, spec, wanted, rows):
        from polyak._sweep_run import pieces  # noqa: PLC0415 -- (a cycle otherwise)
        self.spec, self.wanted = spec, wanted
        self.seconds = 0.0
        if self.path.exists():
            meta = _read_meta(self.path, self.kind)
            _check_identity(self.path, meta, wanted)
            rows, self.seconds = meta["rows_per_piece"], meta["seconds"]
        self.rows, self.layout = rows, pieces(spec, rows)
        self.group = (self.zarr.open_group(self.path, mode="r+") if self.path.exists()
                      else self._create(spec, wanted, rows, len(self.layout)))
        self.done = set(np.flatnonzero(self.group["piece_done"][...]).tolist())
        self.writer = _Writer(self._write)

    def _create(self, spec, wanted, rows, count):
        # built in a temporary directory and renamed into place with its record, so that an
        # interrupted creation leaves no store without one
        final, self.path = self.path, self.path.with_name(self.path.name + f".{os.getpid()}.partial")
        try:
            self._build(spec, wanted, rows, count)
            os.rename(self.path, final)
        finally:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path = final
        return self.zarr.open_group(self.path, mode="r+")

    def _build(self, spec, wanted, rows, count):
        group = self.zarr.open_group(self.path, mode="w-", zarr_format=3)
        present = [name for name in METRICS if _has(spec, name)]
        chunks = (rows,) + tuple(spec.shape[1:]) if spec.shape else ()
        coordinates = " ".join(spec.coords) if spec.dims == ("config",) else None
        # storing competes with the kernel for the cores: the losses and rates (which hardly
        # compress) raw, the steps and flags in LZ4 (Blosc, byte shuffle). Measured here for 250 MB
        # of metrics: zarr's default Zstandard 0.96 s (158 MB), LZ4 on all 0.23 s (148 MB), none 0.13 s
        lz4 = self.zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")
        for name in present:
            extra = (spec.records,) if name == "loss" else ()
            array = group.create_array(name, shape=tuple(spec.shape) + extra, chunks=chunks + extra,
                                       dtype=_DTYPES[name], fill_value=_NOT_COMPUTED[name],
                                       compressors=None if _DTYPES[name] is np.float64 else [lz4],
                                       dimension_names=tuple(spec.dims) + (("t",) if extra else ()))
            if coordinates:
                array.attrs["coordinates"] = coordinates
        for name, values in spec.coords.items():
            axis = ("config",) if spec.dims == ("config",) else (name,)
            group.create_array(name, data=np.asarray(values), dimension_names=axis)
        if spec.every:
            group.create_array("t", data=np.arange(0, spec.steps + 1, spec.every, dtype=np.int64),
                               dimension_names=("t",))
        group.create_array("piece_done", shape=(count,), chunks=(1,), dtype=bool, fill_value=False,
                           dimension_names=("piece",))
        group.attrs[_ATTRIBUTE] = json.dumps(_meta(spec, wanted, rows, count))
        self._consolidate()

    def _consolidate(self):
        # (one metadata document for readers such as xarray.open_zarr; zarr warns that v3 has
        # no such thing in its specification yet)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            self.zarr.consolidate_metadata(self.path)

    def __call__(self, i, metrics):
        self.writer.put((i, metrics))

    def _write(self, item):
        i, metrics = item
        lo, hi = self.layout[i]
        grid = len(self.spec.shape)  # (0: one configuration)
        for name, values in metrics.items():
            target = self.group[name]
            if grid == 0:
                target[...] = values.reshape(target.shape)
            else:
                target[lo // self.spec.row:hi // self.spec.row] = values.reshape(((hi - lo) // self.spec.row,)
                                                                       + target.shape[1:])
        self.group["piece_done"][i] = True

    def finish(self, seconds, interrupted=False):
        self.writer.close()  # (the pieces computed before an interruption are written too)
        done = np.flatnonzero(self.group["piece_done"][...]).size
        meta = json.loads(self.group.attrs[_ATTRIBUTE])
        meta.update(seconds=self.seconds + seconds, complete=bool(done == meta["pieces"]))
        self.group.attrs[_ATTRIBUTE] = json.dumps(meta)
        self._consolidate()

    def result(self):
        return load_sweep(self.path)


class _Writer:
    """A thread that writes what is put in its queue (at most two items wait), so that a
    piece is stored while the next is computed; its errors reach the caller."""

    def __init__(self, write):
        self.write, self.error = write, None
        self.items = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=self._loop, name="polyak-store-writer", daemon=True)
        self.thread.start()

    def _loop(self):
        while (item := self.items.get()) is not None:
            if self.error is None:
                try:
                    self.write(item)
                except BaseException as error:  # noqa: BLE001 -- handed to the caller
                    self.error = error

    def put(self, item):
        self._raise()
        self.items.put(item)

    def close(self):
        self.items.put(None)
        self.thread.join()
        self._raise()

    def _raise(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _has(spec, name):
    return {"steps_to_tol": spec.tol is not None, "loss": bool(spec.every), "rate": spec.constant_rate}.get(name, True)


def _require(module, what):
    try:
        return __import__(module)
    except ImportError as error:
        raise ImportError(f"{what} needs {module}: pip install 'polyak[sweep]'") from error


def _read_meta(path, kind):
    """The store's record of what produced it, or None if it has none."""
    try:
        if kind == ".zarr":
            zarr = _require("zarr", "a .zarr store")
            text = zarr.open_group(path, mode="r").attrs.get(_ATTRIBUTE)
        elif kind == ".nc":
            with _require("h5py", "a .nc store").File(path, "r") as handle:
                text = handle.attrs.get(_ATTRIBUTE)
        else:
            with np.load(path, allow_pickle=False) as handle:
                text = str(handle[_ATTRIBUTE]) if _ATTRIBUTE in handle.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # not a store of this kind
        return None
    if isinstance(text, bytes):
        text = text.decode()
    return None if text is None else json.loads(text)


def load_sweep(path):
    """The SweepResult in a store written by ``polyak.sweep(..., store=path)`` (or ``polyak sweep
    --out``): .zarr, .nc or .npz. The metrics load when first used. A Zarr store still being
    filled (or left by an interrupted sweep) is refused: run the same sweep again to complete it."""
    path = Path(path)
    kind = kind_of(path)
    if not path.exists():
        raise FileNotFoundError(f"no sweep store at {path}")
    meta = _read_meta(path, kind)
    if meta is None:
        raise ValueError(f"{path} is not a polyak sweep store")
    if not meta["complete"]:
        raise ValueError(f"the store {path} is incomplete (an interrupted sweep): run the same sweep with "
                         f"store={str(path)!r} again to complete it")
    dims, shape, every = meta["dims"], meta["shape"], meta["every"]
    if kind in (".zarr", ".nc"):
        coords = {name: _Stored(path, kind, name)() for name in _coordinate_names(meta)}
        metrics = {name: _Stored(path, kind, name) if name in meta["metrics"] else None for name in METRICS}
    else:
        with np.load(path, allow_pickle=False) as handle:
            stored = {name: handle[name] for name in handle.files}
        coords = {name: stored[f"coord_{name}"] for name in _coordinate_names(meta)}
        metrics = {name: stored.get(name) for name in METRICS}
    return _result(dims, shape, coords, meta["constants"], meta["steps"], meta["tol"], every, meta["seconds"],
                   metrics, str(path), meta["spectrum"])


class _Stored:
    """One array of a .zarr or .nc store, read when called (a loader that pickles)."""

    def __init__(self, path, kind, name):
        self.path, self.kind, self.name = path, kind, name

    def __call__(self):
        if self.kind == ".zarr":
            return _require("zarr", "a .zarr store").open_group(self.path, mode="r")[self.name][...]
        with _require("xarray", "a .nc store").open_dataset(self.path, engine="h5netcdf") as dataset:
            return dataset[self.name].values


def _coordinate_names(meta):
    return meta["identity"]["axes"].keys()
