"""Run folders: the configuration, an HDF5 record file, checkpoints, figures and a summary.

Layout (documented in ``docs/run_folder.md``)::

    RUN_DIR/
      config.toml     the configuration the run was started with
      records.h5      every recorded array, appended while the run goes (HDF5, SWMR)
      checkpoint.npz  the runner's latest checkpoint (eosfast.io format)
      summary.json    written when the run ends: status, timings, EoS summary
      figures/        PNG and SVG figures

The HDF5 file holds one group per kind of record (e.g. ``/steps``, ``/sharpness``), each a set
of 1-D-or-more datasets sharing their first axis, growing along it. It is written in SWMR mode,
so ``h5py.File(path, "r", swmr=True)`` reads it while the run is going.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

CONFIG = "config.toml"
RECORDS = "records.h5"
CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"
FIGURES = "figures"

#: statuses of a run that ended and need not run again
FINISHED = ("completed", "converged", "diverged", "stopped_by_callback")


class RecordFile:
    """An append-only HDF5 file of records, readable while it grows (SWMR).

    HDF5's single-writer/multiple-reader mode forbids creating datasets once it is on, so every
    dataset is declared up front: ``schema`` maps ``group -> name -> (dtype, tail_shape)``.

    Parameters
    ----------
    path : path-like
        The file. Mode "w" creates it (replacing any old one), "a" reopens it to append more.
    schema : dict, optional
        Required for mode "w": the groups and datasets, e.g.
        ``{"steps": {"step": ("int64", ()), "loss": ("float64", ())}}``.
    attrs : dict, optional
        Root attributes written at creation (strings, numbers, arrays).
    """

    def __init__(self, path, mode: str = "w", schema: dict | None = None, attrs=None):
        import h5py

        self.path = Path(path)
        if mode == "w":
            if schema is None:
                raise ValueError("a new record file needs a schema")
            self._file = h5py.File(self.path, "w", libver="latest")
            for key, value in (attrs or {}).items():
                self._file.attrs[key] = value
            for group, columns in schema.items():
                g = self._file.create_group(group)
                for name, (dtype, tail) in columns.items():
                    tail = tuple(tail)
                    rows = max(1, 8192 // max(1, int(np.prod(tail, dtype=np.int64))))
                    g.create_dataset(
                        name,
                        shape=(0, *tail),
                        maxshape=(None, *tail),
                        dtype=np.dtype(dtype),
                        chunks=(rows, *tail),
                    )
        elif mode == "a":
            self._file = h5py.File(self.path, "a", libver="latest")
        else:
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        self._file.swmr_mode = True

    def lengths(self) -> dict[str, int]:
        """The number of rows of each group (its first dataset's length)."""
        out = {}
        for group, g in self._file.items():
            if hasattr(g, "values"):
                out[group] = min((len(d) for d in g.values()), default=0)
        return out

    def append(self, records: dict) -> None:
        """Append rows: ``records[group][name]`` arrays, each group's arrays of equal length."""
        for group, columns in records.items():
            if group not in self._file:
                raise KeyError(f"{self.path}: no group {group!r} in the schema")
            g = self._file[group]
            lengths = {len(np.asarray(a)) for a in columns.values()}
            if len(lengths) > 1:
                raise ValueError(f"group {group!r}: columns of different lengths {lengths}")
            unknown = set(columns) - set(g)
            if unknown:
                raise KeyError(f"group {group!r}: no dataset(s) {sorted(unknown)} in the schema")
            for name, values in columns.items():
                values = np.asarray(values)
                if len(values) == 0:
                    continue
                d = g[name]
                start = d.shape[0]
                d.resize(start + len(values), axis=0)
                d[start:] = values

    def truncate(self, lengths: dict[str, int]) -> None:
        """Cut groups back to ``lengths[group]`` rows (records past a checkpoint)."""
        for group, n in lengths.items():
            for d in self._file[group].values():
                if d.shape[0] > n:
                    d.resize(n, axis=0)

    def flush(self) -> None:
        """Make everything appended so far durable and visible to readers."""
        self._file.flush()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def recover_records(path, lengths: dict[str, int] | None = None, block: int = 1 << 20) -> None:
    """Rewrite a record file left by a killed run, keeping ``lengths[group]`` rows per group.

    A file whose writer died cannot be reopened for writing (HDF5 leaves its SWMR-write flag
    set), but it can be read; so its rows are copied into a fresh file that replaces it
    atomically. ``lengths`` defaults to everything readable.
    """
    import h5py

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(path, "r", swmr=True) as old, h5py.File(tmp, "w", libver="latest") as new:
        for key, value in old.attrs.items():
            new.attrs[key] = value
        for group, g in old.items():
            if not isinstance(g, h5py.Group):
                new.create_dataset(group, data=g[()])
                continue
            ng = new.create_group(group)
            keep = min((len(d) for d in g.values()), default=0)
            if lengths is not None and group in lengths:
                keep = min(keep, lengths[group])
            for name, d in g.items():
                nd = ng.create_dataset(
                    name,
                    shape=(keep, *d.shape[1:]),
                    maxshape=d.maxshape,
                    dtype=d.dtype,
                    chunks=d.chunks,
                )
                for start in range(0, keep, block):
                    stop = min(keep, start + block)
                    nd[start:stop] = d[start:stop]
    os.replace(tmp, path)


def read_records(path) -> dict:
    """Every group of a record file as ``{group: {name: ndarray}}`` (safe while it is written)."""
    import h5py

    out = {}
    with h5py.File(path, "r", swmr=True) as f:
        for group, g in f.items():
            if isinstance(g, h5py.Group):
                out[group] = {name: d[()] for name, d in g.items()}
            else:
                out[group] = g[()]
    return out


def read_attrs(path) -> dict:
    """The root attributes of a record file."""
    import h5py

    with h5py.File(path, "r", swmr=True) as f:
        return {key: _plain(value) for key, value in f.attrs.items()}


def finalize_records(path, datasets: dict | None = None, attrs: dict | None = None) -> None:
    """After the run: add whole datasets (e.g. ``x_final``) and attributes (e.g. ``status``)."""
    import h5py

    with h5py.File(path, "a", libver="latest") as f:
        for name, value in (datasets or {}).items():
            if name in f:
                del f[name]
            f.create_dataset(name, data=np.asarray(value))
        for key, value in (attrs or {}).items():
            f.attrs[key] = value


class RunDir:
    """Paths and small files of one run folder."""

    def __init__(self, path):
        self.path = Path(path)

    config = property(lambda self: self.path / CONFIG)
    records = property(lambda self: self.path / RECORDS)
    checkpoint = property(lambda self: self.path / CHECKPOINT)
    summary_path = property(lambda self: self.path / SUMMARY)
    figures = property(lambda self: self.path / FIGURES)

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.figures.mkdir(exist_ok=True)

    def summary(self) -> dict | None:
        """The summary of a run that ended, or None."""
        if not self.summary_path.is_file():
            return None
        return json.loads(self.summary_path.read_text(encoding="utf-8"))

    def finished(self) -> bool:
        summary = self.summary()
        return summary is not None and summary.get("status") in FINISHED

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, summary)

    def write_config(self, text: str) -> None:
        write_text_atomic(self.config, text)


def write_text_atomic(path, text: str) -> None:
    """Write then rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
