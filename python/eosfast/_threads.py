"""The library-wide thread count, shared by every parallel C++ entry point.

Honours ``EOSFAST_NUM_THREADS`` at import and registers with threadpoolctl so
that ``threadpoolctl.threadpool_limits(n)`` limits eosfast as well.
"""

import os
import sys

from . import _core

_VARIANT_MODULES = ("eosfast._core_generic", "eosfast._core_avx2")


def _loaded_cores():
    return [sys.modules[name] for name in _VARIANT_MODULES if name in sys.modules]


def set_num_threads(n: int | None) -> None:
    """Set the number of threads of every eosfast computation.

    ``None`` or ``0`` restores the default: all cores. Results do not depend on it.
    """
    if n is None:
        n = 0
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int or None, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for core in _loaded_cores():
        core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads eosfast computations use."""
    return _core.get_num_threads()


def _from_environment() -> None:
    value = os.environ.get("EOSFAST_NUM_THREADS", "").strip()
    if not value:
        return
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"EOSFAST_NUM_THREADS must be an integer, got {value!r}") from None
    set_num_threads(max(n, 0))


def _register_with_threadpoolctl() -> None:
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - a declared dependency
        return
    if not hasattr(threadpoolctl, "register"):  # pragma: no cover - threadpoolctl < 3.5
        return

    class EosfastController(threadpoolctl.LibController):
        user_api = "eosfast"
        internal_api = "eosfast"
        filename_prefixes = ("_core_generic", "_core_avx2")

        def _module(self):
            for core in _loaded_cores():
                if os.path.realpath(core.__file__) == os.path.realpath(self.filepath):
                    return core
            return _core

        def get_num_threads(self):
            return self._module().get_num_threads()

        def set_num_threads(self, num_threads):
            self._module().set_num_threads(int(num_threads))

        def get_version(self):
            from ._version import __version__

            return __version__

    threadpoolctl.register(EosfastController)
