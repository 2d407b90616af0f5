"""What this eosfast build is and how it runs."""

import sys

from . import _core, _threads
from ._version import __version__


def info() -> dict:
    """Build and run-time facts: version, kernel variant, SIMD, threads (and their source).

    ``variant`` is the compiled kernel variant in use ("avx2" or "generic");
    bitwise reproducibility holds within one variant.

    Examples
    --------
    >>> import eosfast
    >>> i = eosfast.info()
    >>> i["version"] == eosfast.__version__, i["variant"] in ("generic", "avx2")
    (True, True)
    """
    facts = {"version": __version__}
    facts.update(_core.build_info())
    facts["variants_built"] = sorted(
        name.rsplit("_", 1)[-1]
        for name in ("eosfast._core_generic", "eosfast._core_avx2")
        if _variant_importable(name)
    )
    facts["cpu_avx2_fma"] = bool(_core.cpu_has_avx2_fma())
    facts["num_threads"] = _core.get_num_threads()
    facts["num_threads_source"] = _threads.thread_source()
    facts["default_threads"] = _core.default_threads()
    facts["hardware_threads"] = _core.hardware_threads()
    facts["python"] = sys.version.split()[0]
    return facts


def _variant_importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
