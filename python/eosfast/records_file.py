"""records.h5 of a run folder: its schema (built from ``_core``'s column tables), and writing and
reading it whole.

Groups: ``steps`` (the runner's scalar records), ``sharpness`` (its sharpness records, only the
columns the run's optimizer has), ``iterates`` (saved iterates) and the root dataset
``x_final``. Every dataset carries a ``description`` and ``units`` attribute and a Fletcher-32
checksum. The file is built in memory by h5py and written by
:func:`eosfast.run_folder.write_bytes_atomic`, so HDF5 itself never writes to the disk (h5py
reports write errors of a file it owns only as "Exception ignored" messages and may crash after
them).
"""

from __future__ import annotations

import io

import numpy as np

from . import _core
from .io import DamagedFileError
from .run_folder import one_line, write_bytes_atomic

# what users call; the schema and write_records are the experiment runner's
__all__ = ["read_attrs", "read_records"]

#: the HDF5 group of each record kind of the runner (``_core.RECORD_KINDS``)
GROUPS = {"scalars": "steps", "sharpness": "sharpness", "iterates": "iterates"}

# HDF5 1.10's format: metadata checksums (a damaged file is detected), readable by HDF5 >= 1.10
_LIBVER = ("v110", "v110")
_CHUNK_VALUES = 1 << 16  # values per chunk; every chunk carries a Fletcher-32 checksum


def _schema() -> dict:
    """Every dataset of records.h5: ``{"group/name": (description, units)}``."""
    out = {}
    for kind, columns in (
        ("scalars", _core.SCALAR_COLUMNS),
        ("sharpness", _core.SHARPNESS_COLUMNS + _core.SHARPNESS_BLOCKS),
    ):
        for c in columns:
            out[f"{GROUPS[kind]}/{c.name}"] = (c.description, c.units)
    out["iterates/step"] = ("steps of the saved iterates", "steps")
    out["iterates/x"] = ("the iterate x_t", "parameter units")
    out["x_final"] = ("the final iterate", "parameter units")
    return out


#: every dataset of records.h5: (description, units), written as its HDF5 attributes
DATASETS = _schema()
_SCALARS = tuple(c.name for c in _core.SCALAR_COLUMNS if c.name != "step")
_SHARP_BLOCKS = tuple(c.name for c in _core.SHARPNESS_BLOCKS)


def described() -> dict:
    """The attributes of every dataset: ``{"group/name": {"description": ..., "units": ...}}``."""
    return {key: {"description": d, "units": u} for key, (d, u) in DATASETS.items()}


def trajectory_rows(traj, k: int, iterates: bool) -> dict:
    """A Trajectory's records in the run folder's layout: only the columns its optimizer has."""
    rows = {GROUPS["scalars"]: {"step": traj.steps, **{n: getattr(traj, n) for n in _SCALARS}}}
    sharp = {"step": traj.sharpness_steps, "hvps": traj.hvps, "threshold": traj.threshold}
    sharp.update(traj.eos)  # ratio, and the optimizer's own indicators
    m = len(sharp["step"])
    for name in _SHARP_BLOCKS:
        block = np.full((m, k), np.nan)
        values = getattr(traj, name)
        block[:, : values.shape[1]] = values[:, :k]
        sharp[name] = block
    rows[GROUPS["sharpness"]] = sharp
    if iterates:
        rows[GROUPS["iterates"]] = {"step": traj.iterate_steps, "x": np.asarray(traj.iterates)}
    return rows


def write_records(path, groups: dict, attrs: dict | None = None, described=None) -> None:
    """Write a whole record file: ``groups[group][name]`` arrays sharing their first axis.

    A value of ``groups`` that is an array instead of a dict becomes a root dataset (e.g.
    ``x_final``). ``described`` maps ``"group/name"`` (or ``"name"``) to dataset attributes
    (``description``, ``units``...). Every dataset is chunked with a Fletcher-32 checksum, so a
    flipped bit in the data is reported when read, not returned.
    """
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=_LIBVER) as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        for group, columns in groups.items():
            if not isinstance(columns, dict):
                _dataset(f, group, columns, (described or {}).get(group, {}))
                continue
            g = f.create_group(group)
            g.attrs["step_axis"] = "axis 0 of every dataset here: the steps in step"
            for name, values in columns.items():
                _dataset(g, name, values, (described or {}).get(f"{group}/{name}", {}))
    write_bytes_atomic(path, buffer.getbuffer())


def _dataset(parent, name, values, attrs: dict) -> None:
    values = np.asarray(values)
    if values.ndim == 0:
        d = parent.create_dataset(name, data=values)
    else:
        tail = values.shape[1:]
        rows = max(1, min(len(values), _CHUNK_VALUES // max(1, int(np.prod(tail, dtype=np.int64)))))
        d = parent.create_dataset(
            name,
            data=values,
            maxshape=(None, *tail),
            chunks=(rows, *tail) if all(tail) else None,
            fletcher32=all(tail),
        )
    for key, value in attrs.items():
        d.attrs[key] = value


def read_records(path) -> dict:
    """Every group of a record file as ``{group: {name: ndarray}}``.

    Raises :class:`DamagedFileError` at once for a truncated or corrupted file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.records_file import read_records, write_records
    >>> path = os.path.join(tempfile.mkdtemp(), "records.h5")
    >>> write_records(path, {"steps": {"step": np.arange(3), "loss": np.array([1.0, 0.5, 0.2])}})
    >>> read_records(path)["steps"]["loss"]
    array([1. , 0.5, 0.2])
    """
    import h5py

    def groups(f):
        return {
            group: {name: d[()] for name, d in g.items()} if isinstance(g, h5py.Group) else g[()]
            for group, g in f.items()
        }

    return _read_h5(path, groups)


def read_attrs(path) -> dict:
    """The root attributes of a record file (:class:`DamagedFileError` if it is damaged).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.records_file import read_attrs, write_records
    >>> path = os.path.join(tempfile.mkdtemp(), "records.h5")
    >>> write_records(path, {"x_final": np.zeros(2)}, attrs={"optimizer": "gd", "lr": 0.1})
    >>> read_attrs(path) == {"optimizer": "gd", "lr": 0.1}
    True
    """
    return _read_h5(path, lambda f: {key: _plain(value) for key, value in f.attrs.items()})


def _read_h5(path, read):
    """``read(file)`` of the record file opened read-only; a damaged file raises at once."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return read(f)
    except FileNotFoundError:
        raise
    except Exception as exc:  # h5py's errors of a damaged file are of many kinds
        raise DamagedFileError(
            f"{path} is damaged or not a record file ({one_line(exc)})"
        ) from None


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
