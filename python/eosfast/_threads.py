"""The library-wide thread count, shared by every parallel C++ entry point.

The default is computed at import (:func:`default_num_threads`: the environment, then the CPUs
this process may use) and handed to the compiled core; the module registers with threadpoolctl so
that ``threadpoolctl.threadpool_limits(n)`` limits eosfast as well.
"""

import os
import sys

from . import _core

_VARIANT_MODULES = ("eosfast._core_generic", "eosfast._core_avx2")


def _loaded_cores():
    return [sys.modules[name] for name in _VARIANT_MODULES if name in sys.modules]


# Read in this order; the first that is set (a positive integer) gives the default.
THREAD_VARIABLES = ("EOSFAST_NUM_THREADS", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK")
# Where the cgroup file systems are mounted; EOSFAST_CGROUP_ROOT overrides it (tests use a fake).
CGROUP_ROOT = "/sys/fs/cgroup"

_default = (1, "not computed yet")


def set_num_threads(n: int | None) -> None:
    """Set the number of threads of every eosfast computation.

    ``None`` or ``0`` restores the default (see :func:`default_num_threads`). Results do not
    depend on it.

    Examples
    --------
    >>> import eosfast
    >>> eosfast.set_num_threads(1)
    >>> eosfast.get_num_threads()
    1
    >>> eosfast.set_num_threads(None)  # back to the default
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
    """The number of threads eosfast computations use.

    Examples
    --------
    >>> import eosfast
    >>> eosfast.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def thread_source() -> str:
    """Where :func:`get_num_threads` comes from: ``set_num_threads`` or the default's source."""
    if _core.thread_setting() > 0:
        return "set_num_threads (or threadpoolctl)"
    return _default[1]


def _positive_int(name: str, value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    head = value.split(",")[0].strip()  # OMP_NUM_THREADS may list nested levels: "4,2"
    try:
        n = int(head)
    except ValueError:
        raise ValueError(
            f"{name} must be a positive integer (or unset), got {value!r}; fix or unset it"
        ) from None
    if n < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}; fix or unset it")
    return n or None  # 0: automatic


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _cgroup_dirs(root: str, controller: str | None, proc_cgroup: str | None) -> list[str]:
    """This process's cgroup folder under root and its ancestors up to root (deepest first);
    just root when the process's own path is not there (a container's namespaced view, or a
    fake root)."""
    text = _read("/proc/self/cgroup") if proc_cgroup is None else proc_cgroup
    rel = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if controller is None and parts[0] == "0" and parts[1] == "":
            rel = parts[2]
        elif controller is not None and controller in parts[1].split(","):
            rel = parts[2]
    dirs = []
    if rel:
        here = os.path.normpath(os.path.join(root, rel.lstrip("/")))
        while here.startswith(os.path.normpath(root)) and os.path.isdir(here):
            dirs.append(here)
            if os.path.normpath(here) == os.path.normpath(root):
                break
            here = os.path.dirname(here)
    if not dirs:
        dirs = [root]
    return dirs


def cgroup_cpu_limit(root: str | None = None, proc_cgroup: str | None = None):
    """The CPU quota of this process's cgroup as ``(cpus, description)``, or None if unlimited.

    cgroup v2: ``cpu.max`` ("quota period" or "max period"); cgroup v1: ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` under the ``cpu`` controller. The smallest quota among the cgroup and
    its ancestors counts. ``root`` defaults to ``EOSFAST_CGROUP_ROOT`` or /sys/fs/cgroup;
    ``proc_cgroup`` to the text of /proc/self/cgroup.
    """
    if root is None:
        root = os.environ.get("EOSFAST_CGROUP_ROOT", "").strip() or CGROUP_ROOT
    best = None
    for d in _cgroup_dirs(root, None, proc_cgroup):
        text = _read(os.path.join(d, "cpu.max"))
        if text is None:
            continue
        fields = text.split()
        if len(fields) == 2 and fields[0] != "max":
            try:
                cpus = int(fields[0]) / int(fields[1])
            except (ValueError, ZeroDivisionError):
                continue
            if cpus > 0 and (best is None or cpus < best[0]):
                best = (cpus, f"cgroup v2 {os.path.join(d, 'cpu.max')}: {text.strip()}")
    for sub in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        base = os.path.join(root, sub)
        if not os.path.isdir(base):
            continue
        for d in _cgroup_dirs(base, "cpu", proc_cgroup):
            quota = _read(os.path.join(d, "cpu.cfs_quota_us"))
            period = _read(os.path.join(d, "cpu.cfs_period_us"))
            try:
                q, p = int(quota), int(period)
            except (TypeError, ValueError):
                continue
            if q > 0 and p > 0 and (best is None or q / p < best[0]):
                best = (q / p, f"cgroup v1 {d}: cfs_quota_us {q} / cfs_period_us {p}")
        break
    return best


def default_num_threads(environ=None, cgroup_root: str | None = None) -> tuple[int, str]:
    """The default thread count and where it comes from.

    The first of ``EOSFAST_NUM_THREADS``, ``OMP_NUM_THREADS``, ``SLURM_CPUS_PER_TASK`` that is
    set; otherwise the CPUs this process may use: the affinity mask (``os.sched_getaffinity``)
    capped by the cgroup CPU quota (rounded down, at least 1). Never the machine's core count
    when the process may use fewer.
    """
    env = os.environ if environ is None else environ
    if not _core.threads_enabled():
        return 1, "serial build (EOSFAST_THREADS=OFF)"
    for name in THREAD_VARIABLES:
        n = _positive_int(name, env.get(name, ""))
        if n is not None:
            return n, f"{name}={n}"
    try:
        cpus = len(os.sched_getaffinity(0))
        source = f"os.sched_getaffinity: {cpus} CPUs"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
        source = f"os.cpu_count: {cpus}"
    if cgroup_root is None:
        cgroup_root = env.get("EOSFAST_CGROUP_ROOT", "").strip() or CGROUP_ROOT
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None and int(limit[0]) < cpus:
        return max(1, int(limit[0])), f"{limit[1]} ({limit[0]:g} CPUs; affinity {cpus})"
    return max(1, cpus), source


def _from_environment() -> None:
    """Computes the default at import and hands it to every loaded core."""
    global _default
    _default = default_num_threads()
    for core in _loaded_cores():
        core.set_default_threads(_default[0])


def _register_with_threadpoolctl() -> None:
    import threadpoolctl  # a required dependency (>= 3.5, which has register)

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
