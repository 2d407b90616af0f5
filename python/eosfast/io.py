"""Files of eosfast runs: atomic checkpoints and streamed record arrays (numpy only).

Checkpoints are ``.npz`` archives of a nested dict (keys joined by ``/``), written
to a temporary file in the same folder, flushed to disk and then renamed over
the target with ``os.replace``, so a checkpoint on disk is always complete,
even if the process is killed while writing.

Streamed records are ordinary ``.npy`` files of shape (rows, cols) and dtype
float64 that grow by appending raw rows: the header is written with a fixed
length of 256 bytes and rewritten with the current row count at each
:meth:`NpyAppender.flush`, so ``numpy.load`` reads a consistent file after every
flush (rows appended after the last flush are not yet part of it), and memory
stays bounded however long the run.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

__all__ = [
    "DamagedFileError",
    "NpyAppender",
    "check_appended",
    "load_checkpoint",
    "save_checkpoint",
]

_HEADER_BYTES = 256
_MAGIC = b"\x93NUMPY\x01\x00"


def _npy_header(rows: int, cols: int) -> bytes:
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}"
    pad = _HEADER_BYTES - len(_MAGIC) - 2 - len(text) - 1
    if pad < 0:  # pragma: no cover - needs more than 10^200 rows
        raise ValueError("shape too large for the fixed .npy header")
    body = (text + " " * pad + "\n").encode("latin1")
    return _MAGIC + len(body).to_bytes(2, "little") + body


class DamagedFileError(ValueError):
    """A file of a run that cannot be read back: truncated, corrupted or not eosfast's."""


def check_appended(file, cols: int, rows: int, name) -> None:
    """Raise :class:`DamagedFileError` unless ``file`` is an appender's of ``rows`` x ``cols``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.io import NpyAppender, check_appended
    >>> path = os.path.join(tempfile.mkdtemp(), "steps.npy")
    >>> with NpyAppender(path, cols=2) as out:
    ...     out.append(np.ones((3, 2)))
    >>> with open(path, "rb") as f:
    ...     check_appended(f, cols=2, rows=3, name="steps.npy")
    ...     check_appended(f, cols=2, rows=4, name="steps.npy")
    Traceback (most recent call last):
    ...
    eosfast.io.DamagedFileError: steps.npy is damaged: ... needed for 4 rows
    """
    file.seek(0)
    header = file.read(_HEADER_BYTES)
    size = os.fstat(file.fileno()).st_size
    needed = _HEADER_BYTES + 8 * cols * rows
    if len(header) != _HEADER_BYTES or not header.startswith(_MAGIC):
        raise DamagedFileError(f"{name} is not a streamed eosfast record file")
    if b"'shape': (" not in header or f", {cols}), ".encode() not in header:
        raise DamagedFileError(f"{name} is damaged: its header does not say {cols} columns")
    if size < needed:
        raise DamagedFileError(f"{name} is damaged: {size} bytes, {needed} needed for {rows} rows")


def _write_error(exc: OSError, path) -> OSError:
    """The error of a failed write, naming the file (Python's own names none)."""
    return OSError(exc.errno, f"cannot write {os.fspath(path)}: {exc.strerror or exc}")


def _crc_of_rows(file, nbytes: int, block: int = 1 << 22) -> int:
    """CRC-32 of the ``nbytes`` bytes after the header."""
    file.seek(_HEADER_BYTES)
    crc = 0
    while nbytes > 0:
        chunk = file.read(min(block, nbytes))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        nbytes -= len(chunk)
    return crc


class NpyAppender:
    """Appends float64 rows to a ``.npy`` file of shape (rows, cols).

    Parameters
    ----------
    path : str or os.PathLike
    cols : int
    rows : int, optional
        Open an existing file written by an appender and keep only its first
        ``rows`` rows (the state of a checkpoint); None starts a new file.
    crc : int, optional
        With ``rows``: the CRC-32 of those rows' bytes (:attr:`crc` when the
        checkpoint was written); a file whose rows do not match it is refused,
        so a flipped bit is found instead of resumed from.

    Attributes
    ----------
    crc : int
        The CRC-32 of every row appended so far, kept up to date as rows come.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.io import NpyAppender
    >>> path = os.path.join(tempfile.mkdtemp(), "steps.npy")
    >>> with NpyAppender(path, cols=2) as out:
    ...     out.append(np.array([[0.0, 1.0], [1.0, 0.5]]))
    >>> np.load(path)
    array([[0. , 1. ],
           [1. , 0.5]])
    """

    def __init__(self, path, cols: int, rows: int | None = None, crc: int | None = None):
        self.path = os.fspath(path)
        self.cols = int(cols)
        self.crc = 0
        if rows is None:
            self._file = open(self.path, "w+b")  # noqa: SIM115 - kept open while appending
            self.rows = 0
            self._file.write(_npy_header(0, self.cols))
        else:
            try:
                self._file = open(self.path, "r+b")  # noqa: SIM115
            except FileNotFoundError:
                raise DamagedFileError(f"{self.path} is missing") from None
            try:
                check_appended(self._file, self.cols, int(rows), self.path)
                self.crc = _crc_of_rows(self._file, 8 * self.cols * int(rows))
                if crc is not None and self.crc != int(crc):
                    raise DamagedFileError(
                        f"{self.path} is damaged: its first {rows} rows do not match the "
                        "checksum of the checkpoint"
                    )
            except ValueError:
                self._file.close()
                raise
            self.rows = int(rows)
            self._file.truncate(_HEADER_BYTES + 8 * self.cols * self.rows)
            self._file.seek(0, os.SEEK_END)
        self.flush()

    def append(self, block: np.ndarray) -> None:
        """Append rows of shape (n, cols)."""
        block = np.ascontiguousarray(block, dtype="<f8")
        if block.ndim != 2 or block.shape[1] != self.cols:
            raise ValueError(f"rows of shape {block.shape} do not fit {self.cols} columns")
        data = block.tobytes()
        try:
            self._file.write(data)
        except OSError as exc:  # a full disk: say which file
            raise _write_error(exc, self.path) from None
        self.crc = zlib.crc32(data, self.crc)
        self.rows += block.shape[0]

    def flush(self) -> None:
        """Rewrite the header with the current row count and push the file to disk."""
        try:
            self._file.seek(0)
            self._file.write(_npy_header(self.rows, self.cols))
            self._file.seek(0, os.SEEK_END)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise _write_error(exc, self.path) from None

    def close(self) -> None:
        if not self._file.closed:
            try:
                self.flush()
            finally:
                self._file.close()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self) -> np.ndarray:
        """The rows so far as a read-only memory map (flushes first)."""
        self.flush()
        if self.rows == 0:
            return np.empty((0, self.cols))
        return np.load(self.path, mmap_mode="r")


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if "/" in key:
            raise ValueError(f"checkpoint keys must not contain '/': {key!r}")
        name = prefix + key
        if isinstance(value, dict):
            flat[name + "/"] = np.array(True)  # marks (possibly empty) dicts
            flat.update(_flatten(value, name + "/"))
        elif value is None:
            flat[name + "?none"] = np.array(True)
        else:
            flat[name] = np.asarray(value)
    return flat


def _unflatten(flat) -> dict:
    tree: dict = {}
    for name in flat:
        if name.endswith("/"):
            parts, value = name[:-1].split("/"), {}
        elif name.endswith("?none"):
            parts, value = name[: -len("?none")].split("/"), None
        else:
            parts, value = name.split("/"), flat[name]
            if value.ndim == 0:
                value = value.item()
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(value, dict):
            node.setdefault(parts[-1], {})
        else:
            node[parts[-1]] = value
    return tree


def save_checkpoint(path, state: dict) -> None:
    """Write a nested dict of arrays and scalars atomically to ``path`` (.npz).

    Values may be numpy arrays, numbers, bools, strings, None or nested dicts.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.io import load_checkpoint, save_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
    >>> save_checkpoint(path, {"step": 10, "state": {"x": np.array([1.0, 2.0])}})
    >>> load_checkpoint(path)["state"]["x"]
    array([1., 2.])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **_flatten(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: the old checkpoint stays
        raise _write_error(exc, path) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` back into a nested dict.

    Examples
    --------
    >>> import os, tempfile
    >>> from eosfast.io import load_checkpoint, save_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
    >>> save_checkpoint(path, {"step": 10, "name": "gd", "seed": None})
    >>> state = load_checkpoint(path)
    >>> int(state["step"]), str(state["name"]), state["seed"]
    (10, 'gd', None)
    """
    with open(os.fspath(path), "rb") as f, np.load(f, allow_pickle=False) as data:
        return _unflatten({name: data[name] for name in data.files})
