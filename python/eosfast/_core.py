"""Selects the compiled core for this CPU and installs it as ``eosfast._core``.

The C++ core is compiled once per kernel variant: ``generic`` (baseline ISA)
and, on x86-64, ``avx2`` (x86-64-v3: AVX2 and FMA). The best variant the CPU
supports is chosen here; ``EOSFAST_VARIANT=generic`` (or ``avx2``) forces one.
Results are bitwise reproducible within one variant, not across variants.
"""

import importlib
import os
import sys

from . import _pickling

_PREFERENCE = ("avx2", "generic")


def _supported(variant: str) -> bool:
    if variant == "generic":
        return True
    try:
        from . import _core_generic
    except ImportError:  # an avx2-only build (a source build on an AVX2 machine)
        return _cpu_flags_allow_avx2()
    return _core_generic.cpu_has_avx2_fma()


def _cpu_flags_allow_avx2() -> bool:
    """Without the generic module to ask: the CPU flags Linux reports (elsewhere: assume yes,
    the build probed this machine's CPU)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx2", "fma"} <= flags
    except OSError:
        pass
    return True


def _load(variant: str):
    return importlib.import_module(f"eosfast._core_{variant}")


def _choose():
    requested = os.environ.get("EOSFAST_VARIANT", "").strip().lower()
    if requested:
        if requested not in _PREFERENCE:
            raise ImportError(
                f"EOSFAST_VARIANT={requested!r} is not a kernel variant; use one of {_PREFERENCE}"
            )
        if not _supported(requested):
            raise ImportError(f"EOSFAST_VARIANT={requested!r}: this CPU does not support it")
        return _load(requested)
    for variant in _PREFERENCE:
        if _supported(variant):
            try:
                return _load(variant)
            except ModuleNotFoundError:
                continue  # variant not built on this platform
    raise ImportError(
        "no eosfast kernel variant this CPU can run was built (a source build keeps only the "
        "variant of the CPU it was built on); rebuild here, or install with "
        "-Ccmake.define.EOSFAST_VARIANTS='generic;avx2'"
    )


_module = _choose()
_pickling.register(_module)
sys.modules[__name__] = _module
