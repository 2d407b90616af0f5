"""The installed build: one version source, and a threads backend that tells the truth."""

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import eosfast
import eosfast._version
import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_has_one_source():
    text = Path(eosfast._version.__file__).read_text()
    assignments = re.findall(r'^__version__\s*=\s*"([^"]+)"\s*$', text, flags=re.MULTILINE)
    assert len(assignments) == 1, text
    (version,) = assignments
    assert eosfast.__version__ == version
    assert importlib.metadata.version("eosfast") == version
    assert eosfast.info()["version"] == version


def test_pyproject_reads_the_version_file():
    tomllib = pytest.importorskip("tomllib")
    if not PYPROJECT.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    config = tomllib.loads(PYPROJECT.read_text())
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    metadata = config["tool"]["scikit-build"]["metadata"]["version"]
    assert metadata["provider"] == "scikit_build_core.metadata.regex"
    assert metadata["input"] == "python/eosfast/_version.py"


_THREADS_PROBE = """
import os, numpy as np, eosfast
from eosfast.problems import Quadratic
n = 2_000_000  # many chunks of the loss's dot products: a parallel loop on 2 threads
problem = Quadratic(np.ones(n))
before = len(os.listdir("/proc/self/task"))
eosfast.set_num_threads(2)
problem.loss(np.ones(n))
after = len(os.listdir("/proc/self/task"))
facts = eosfast.info()
workers = eosfast._core.pool_workers()
print(facts["threads_backend"], facts["hardware_threads"], after - before, workers)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("variant", ["generic", "avx2"])
def test_info_threads_backend_matches_the_threads_used(variant):
    if variant not in eosfast.info()["variants_built"]:
        pytest.skip(f"{variant} not built here")
    if variant == "avx2" and not eosfast.info()["cpu_avx2_fma"]:
        pytest.skip("CPU without AVX2/FMA")
    env = {k: v for k, v in os.environ.items() if k != "EOSFAST_NUM_THREADS"}
    env["EOSFAST_VARIANT"] = variant
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    backend, hardware_threads, new_threads, workers = out.stdout.strip().splitlines()[-1].split()
    assert backend == eosfast.info()["threads_backend"]
    if backend == "pool":
        # The pool keeps its one worker (2 threads: the caller and a worker) after the region.
        assert int(new_threads) == int(workers) == 1
        assert int(hardware_threads) == os.cpu_count()
    else:
        assert backend == "serial"
        assert int(new_threads) == int(workers) == 0
        assert int(hardware_threads) == 1


def _stub_names():
    """Top-level names of python/eosfast/_core.pyi and, per class, the names it defines."""
    import ast

    tree = ast.parse((Path(eosfast.__file__).parent / "_core.pyi").read_text())
    top, members = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            top.add(node.name)
        if isinstance(node, ast.AnnAssign):
            top.add(node.target.id)
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
            } | {t.id for n in node.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    return top, members


def test_core_stubs_cover_the_compiled_module():
    """The shipped type stubs describe every public name of the compiled core (regenerate
    them with tools/make_stubs.py after changing the bindings)."""
    from eosfast import _core

    top, members = _stub_names()
    public = {n for n in dir(_core) if not n.startswith("_")}
    assert public <= top, sorted(public - top)
    for name in public:
        obj = getattr(_core, name)
        if isinstance(obj, type) and not issubclass(obj, Exception):
            own = {n for n in vars(obj) if not n.startswith("_")}
            assert own <= members[name], (name, sorted(own - members[name]))
