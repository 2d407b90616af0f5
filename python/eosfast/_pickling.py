"""Pickles of the bound C++ classes that load whatever kernel variant is chosen.

A bound class lives in its variant's module (``eosfast._core_avx2``), and pickle names a
class by its module: a state pickled with one variant would not load where the other is
chosen. Each class with a ``__reduce__`` is pickled instead as a call of :func:`rebuild`
with its name, which looks it up in ``eosfast._core``, the variant in use.
"""

from __future__ import annotations

import copyreg


def rebuild(name: str, args: tuple):
    """The class ``name`` of the kernel variant in use, called with ``args``."""
    from . import _core

    return getattr(_core, name)(*args)


def register(module) -> None:
    """Pickle every class of ``module`` that defines ``__reduce__`` through :func:`rebuild`."""
    for name, cls in vars(module).items():
        if isinstance(cls, type) and "__reduce__" in vars(cls):
            copyreg.pickle(cls, _reducer(name))


def _reducer(name: str):
    def reduce(obj):
        _, args = obj.__reduce__()[:2]
        return rebuild, (name, tuple(args))

    return reduce
