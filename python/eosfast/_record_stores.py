"""Where a run's records go while it runs: numpy arrays in memory, or ``.npy`` files.

The C++ runner fills one buffer per record kind (``_core.RECORD_KINDS``); the host drains them
into one of these stores between slices of the loop. The row widths follow the column tables
of ``_core`` (``src/cpp/dynamics/records.hpp``).
"""

from __future__ import annotations

import os

import numpy as np

from . import _core
from .io import NpyAppender

RECORD_KINDS = _core.RECORD_KINDS
_INITIAL_ROWS = 1 << 16  # records are preallocated up to this many rows, then grown


class MemoryStore:
    """Records in preallocated numpy arrays (grown by doubling if ever needed)."""

    def __init__(self, widths: dict, capacities: dict, saved: dict | None = None):
        self._data = {
            k: np.empty((min(max(capacities[k], 1), _INITIAL_ROWS), widths[k]))
            for k in RECORD_KINDS
        }
        self._rows = dict.fromkeys(RECORD_KINDS, 0)
        if saved is not None:
            for k in RECORD_KINDS:
                self.append_one(k, np.asarray(saved[k]).reshape(-1, widths[k]))

    def append_one(self, kind: str, block: np.ndarray) -> None:
        n, rows = block.shape[0], self._rows[kind]
        data = self._data[kind]
        if rows + n > data.shape[0]:
            grown = np.empty((max(2 * data.shape[0], rows + n), data.shape[1]))
            grown[:rows] = data[:rows]
            self._data[kind] = data = grown
        data[rows : rows + n] = block
        self._rows[kind] = rows + n

    def append(self, records: dict) -> None:
        for k in RECORD_KINDS:
            if records[k].shape[0]:
                self.append_one(k, records[k])

    def arrays(self) -> dict:
        return {k: self._data[k][: self._rows[k]] for k in RECORD_KINDS}

    def payload(self, checkpoint=None) -> dict:
        return {"mode": "memory", **{k: self._data[k][: self._rows[k]] for k in RECORD_KINDS}}

    def close(self) -> None:
        pass


class StreamStore:
    """Records appended to ``<folder>/<kind>.npy`` (see :class:`eosfast.io.NpyAppender`)."""

    def __init__(self, folder, widths: dict, counts: dict | None = None, crcs=None):
        self.folder = os.path.abspath(os.fspath(folder))
        os.makedirs(self.folder, exist_ok=True)
        self._files = {}
        try:
            for k in RECORD_KINDS:
                rows = None if counts is None else int(counts[k])
                crc = None if crcs is None else int(crcs[k])
                path = os.path.join(self.folder, f"{k}.npy")
                self._files[k] = NpyAppender(path, widths[k], rows, crc)
        except BaseException:  # a damaged file: close the ones already open
            for f in self._files.values():
                f.close()
            raise

    def append(self, records: dict) -> None:
        for k in RECORD_KINDS:
            if records[k].shape[0]:
                self._files[k].append(records[k])

    def arrays(self) -> dict:
        return {k: f.load() for k, f in self._files.items()}

    def payload(self, checkpoint=None) -> dict:
        for f in self._files.values():
            f.flush()
        folder = self.folder
        if checkpoint is not None:  # relative to the checkpoint: a moved folder keeps working
            folder = os.path.relpath(folder, os.path.dirname(os.path.abspath(checkpoint)))
        return {
            "mode": "stream",
            "folder": folder,
            "counts": {k: f.rows for k, f in self._files.items()},
            "crcs": {k: f.crc for k, f in self._files.items()},
        }

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def widths(dim: int, width: int) -> dict:
    """Columns of each record kind for a problem of ``dim`` tracking up to ``width`` pairs."""
    return {
        "scalars": len(_core.SCALAR_COLUMNS),
        "sharpness": len(_core.SHARPNESS_COLUMNS) + len(_core.SHARPNESS_BLOCKS) * width,
        "iterates": 1 + dim,
    }


def capacities(cfg: dict) -> dict:
    """Rows each record kind will hold at most (the memory store preallocates them)."""
    steps = cfg["steps"]

    def count(every):
        return steps // every + 2 if every else 0

    return {
        "scalars": count(cfg["record_every"]),
        "sharpness": count(cfg["sharpness_every"]),
        "iterates": count(cfg["save_iterates_every"]),
    }
