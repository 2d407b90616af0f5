"""Run folders: the configuration, an HDF5 record file, checkpoints, figures and a summary.

Layout (documented in ``docs/run_folder.md``)::

    RUN_DIR/
      config.toml     the configuration the run was started with
      records.h5      every recorded array (HDF5), replaced whole at each write
      checkpoint.npz  the runner's latest checkpoint (eosfast.io format)
      stream/         the runner's own record files while the run goes
      summary.json    written when the run ends: status, timings, EoS summary
      figures/        PNG and SVG figures

Every file is written whole to a temporary name, flushed to disk and renamed over the old one
(:func:`write_bytes_atomic`), so a reader, a crash or a full disk never meets half a file: an
I/O error (e.g. ENOSPC) is raised as an ``OSError`` naming the file, and the previous version
stays in place. The HDF5 file is built in memory by h5py and written by that same function, so
HDF5 itself never writes to the disk (h5py reports write errors of a file it owns only as
"Exception ignored" messages and may crash after them).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from .io import DamagedFileError

CONFIG = "config.toml"
RECORDS = "records.h5"
CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"
FIGURES = "figures"

#: statuses of a run that ended and need not run again
FINISHED = ("completed", "converged", "diverged", "stopped_by_callback")

# HDF5 1.10's format: metadata checksums (a damaged file is detected), readable by HDF5 >= 1.10
_LIBVER = ("v110", "v110")
_CHUNK_VALUES = 1 << 16  # values per chunk; every chunk carries a Fletcher-32 checksum


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
    """
    import h5py

    def groups(f):
        return {
            group: {name: d[()] for name, d in g.items()} if isinstance(g, h5py.Group) else g[()]
            for group, g in f.items()
        }

    return _read_h5(path, groups)


def read_attrs(path) -> dict:
    """The root attributes of a record file (:class:`DamagedFileError` if it is damaged)."""
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
            f"{path} is damaged or not a record file ({_one_line(exc)})"
        ) from None


def write_bytes_atomic(path, data) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it over ``path``.

    Every write is checked: an ``OSError`` (full disk, I/O error, read-only folder) names the
    file, the temporary file is removed, and the old ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from None
    _sync_folder(path.parent)


def _sync_folder(folder) -> None:
    """Make a rename durable (where the OS allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
        """Make the folder, or say in one line why it cannot be made (``OSError``)."""
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(
                f"the output folder {self.path} is a file; choose another [output] dir or --out"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.figures.mkdir(exist_ok=True)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot make the run folder {self.path}: {exc.strerror or exc}; "
                "choose a writable [output] dir or --out",
            ) from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(
                f"the run folder {self.path} is not writable; choose another [output] dir or --out"
            )

    def summary(self) -> dict | None:
        """The summary of a run that ended, or None (:class:`DamagedFileError` if damaged)."""
        if not self.summary_path.is_file():
            return None
        try:
            summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DamagedFileError(
                f"{self.summary_path} is damaged ({_one_line(exc)}); delete it to resume the run "
                "from its checkpoint, or pass --restart"
            ) from None
        if not isinstance(summary, dict):
            raise DamagedFileError(f"{self.summary_path} is not a summary (a JSON object)")
        return summary

    def finished(self) -> bool:
        summary = self.summary()
        return summary is not None and summary.get("status") in FINISHED

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.summary_path, summary)

    def write_config(self, text: str) -> None:
        write_text_atomic(self.config, text)


def write_text_atomic(path, text: str) -> None:
    """Write then rename, so readers never see half a file (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


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
