"""Run folders: the layout, their small files, and atomic writes of every file in them.

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
stays in place. records.h5 is written through the same function (see
:mod:`eosfast.records_file`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import _core
from .io import DamagedFileError

# what users call; the write_* helpers are the experiment runner's
__all__ = ["RunDir"]

CONFIG = "config.toml"
RECORDS = "records.h5"
CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"
FIGURES = "figures"

STREAM = "stream"  # the runner's own record files while the run goes (removed at the end)

#: statuses of a run that ended and need not run again (declared in C++: runner.hpp)
FINISHED = tuple(s.name for s in _core.RUN_STATUSES if s.ended)


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


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (the CLI prints one line per failure)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class RunDir:
    """Paths and small files of one run folder.

    Examples
    --------
    >>> import os, tempfile
    >>> from eosfast.run_folder import RunDir
    >>> run = RunDir(os.path.join(tempfile.mkdtemp(), "run"))
    >>> run.create()
    >>> run.summary() is None, run.finished()
    (True, False)
    >>> run.write_summary({"status": "completed", "steps": 100})
    >>> run.finished(), run.summary()["steps"]
    (True, 100)
    >>> run.records.name, run.checkpoint.name
    ('records.h5', 'checkpoint.npz')
    """

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
                f"{self.summary_path} is damaged ({one_line(exc)}); delete it to resume the run "
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
