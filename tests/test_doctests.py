"""The Examples sections of the docstrings run as doctests, and every public function has one.

The modules are imported from the installed package (the README's test command tests what pip
installed), so the doctests see the same eosfast as the user.
"""

import doctest
import importlib
import inspect

import pytest

# The public modules: eosfast, its public subpackages and the helpers they document.
MODULES = [
    "eosfast",
    "eosfast.problems",
    "eosfast.spectrum",
    "eosfast.flow",
    "eosfast.torch",
    "eosfast.progress",
    "eosfast.io",
    "eosfast.analysis",
    "eosfast.records_file",
    "eosfast.data",
    "eosfast.config",
    "eosfast.sweep",
    "eosfast.run_folder",
    "eosfast.experiment",
    "eosfast.distributed",
    "eosfast.plot",
]
_NEEDS = {
    "eosfast.torch": "torch",
    "eosfast.records_file": "h5py",
    "eosfast.data": "sklearn",
    "eosfast.experiment": "h5py",
    "eosfast.distributed": "mpi4py",
    "eosfast.plot": "matplotlib",
}
# The only examples not run (``+SKIP``): they start a Dask cluster.
SKIPPED_EXAMPLES = {"run_tasks", "sweep"}  # of eosfast.sweep


def _module(name):
    if name in _NEEDS:
        pytest.importorskip(_NEEDS[name])
    return importlib.import_module(name)


def _public_functions(module):
    names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
    for name in names:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield name, obj


def _doctests():
    """(id, DocTest) of every docstring with examples in the public modules' source files."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    seen = {}
    for name in MODULES:
        try:
            module = _module(name)
        except pytest.skip.Exception:
            continue
        objects = [module] + [obj for _, obj in _public_functions(module)]
        names = getattr(module, "__all__", [])
        objects += [getattr(module, n) for n in names if inspect.isclass(getattr(module, n))]
        for obj in objects:
            home = importlib.import_module(getattr(obj, "__module__", name) or name)
            for test in finder.find(obj, module=home):
                if test.examples:
                    seen.setdefault(test.name, test)
    return sorted(seen.items())


DOCTESTS = _doctests()


def test_there_are_doctests():
    assert len(DOCTESTS) >= 30


@pytest.mark.parametrize("name", [n for n, _ in DOCTESTS])
def test_doctest(name):
    test = dict(DOCTESTS)[name]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_function_has_examples(module_name):
    module = _module(module_name)
    missing = [
        name
        for name, fn in _public_functions(module)
        if ">>>" not in (fn.__doc__ or "") or "Examples\n" not in (fn.__doc__ or "")
    ]
    assert not missing, f"{module_name}: public functions without an Examples section: {missing}"


def test_only_the_exempted_examples_are_skipped():
    skipping = {
        name.rsplit(".", 1)[-1]
        for name, test in DOCTESTS
        if any(e.options.get(doctest.SKIP) for e in test.examples)
    }
    assert skipping == SKIPPED_EXAMPLES
