"""Names and defaults declared once in the compiled core and derived everywhere else:
the optimizer vocabulary (src/cpp/dynamics/optimizer_names.hpp), the tracker's defaults
and its state (src/cpp/spectrum/tracker.hpp)."""

import inspect
import math
import pickle

import eosfast
import numpy as np
import pytest
from eosfast import _core
from eosfast.config import SCHEMA, parse_config
from eosfast.flow._limiting import algorithm_name
from eosfast.optimizers import _OPTIMIZERS, flow_algorithm, optimizer_names

NAMES = _core.OPTIMIZER_NAMES


def test_the_optimizer_table_names_every_optimizer_class():
    assert {n.name for n in NAMES} == set(_OPTIMIZERS)
    for n in NAMES:
        assert getattr(_core, n.name).__name__ == n.name  # the binding's class name
        assert getattr(eosfast, n.name).__name__ == n.name
    assert eosfast.NormalizedGD(0.1).name == "NormalizedGD"
    assert eosfast.SqrtGD(0.1).name == "SqrtGD"


def test_config_types_and_flow_words_come_from_core():
    assert SCHEMA["optimizer"]["type"].choices == tuple(n.config for n in NAMES if n.config)
    from eosfast.problems import toys

    assert toys._ALGORITHMS == tuple(n.flow for n in NAMES if n.flow) == ("ngd", "sqrt")


@pytest.mark.parametrize("entry", [n for n in NAMES if n.flow], ids=lambda n: n.name)
def test_every_spelling_of_a_flow_algorithm_resolves(entry):
    snake = {"NormalizedGD": "normalized_gd", "SqrtGD": "sqrt_gd"}[entry.name]
    for word in (
        entry.flow,
        entry.config,
        entry.name,
        entry.name.lower(),
        snake,
        entry.flow.upper(),
    ):
        assert algorithm_name(word) == flow_algorithm(word) == entry.flow
    assert algorithm_name(getattr(eosfast, entry.name)(0.1)) == entry.flow
    assert optimizer_names(entry.config) is not None
    assert optimizer_names(entry.config).name == entry.name


def test_words_without_a_flow_are_refused():
    with pytest.raises(ValueError, match="'ngd' or 'sqrt'"):
        algorithm_name("gd")
    with pytest.raises(TypeError, match="NormalizedGD or SqrtGD, got GD"):
        algorithm_name(eosfast.GD(0.1))
    assert optimizer_names("") is None and optimizer_names("adam") is None


def _config(opt_type):
    raw = {
        "optimizer": {"type": opt_type, "lr": 0.01},
        "run": {"steps": 3},
        "data": {"name": "digits"},
    }
    return parse_config(raw, source="test")


@pytest.mark.parametrize("opt_type", SCHEMA["optimizer"]["type"].choices)
def test_every_configurable_optimizer_builds_the_class_of_its_name(opt_type):
    from eosfast.builders import build_optimizer

    optimizer = build_optimizer(_config(opt_type))
    assert optimizer.name == optimizer_names(opt_type).name


@pytest.mark.parametrize("name", ["GD", "NormalizedGD", "SqrtGD"])
def test_trajectory_eos_reports_the_indicators_the_table_declares(name):
    problem = eosfast.problems.Valley2D()
    optimizer = getattr(eosfast, name)(0.02)
    traj = eosfast.run(problem, optimizer, np.array([3.0, 0.5]), steps=6, sharpness_every=2)
    eos = traj.eos
    assert list(eos) == ["ratio", *optimizer_names(name).indicators]
    for key in optimizer_names(name).indicators:
        assert np.isfinite(eos[key][:-1]).all()


def test_tracker_defaults_are_the_core_defaults():
    core = _core.TrackerOptions()
    params = inspect.signature(eosfast.SharpnessTracker).parameters
    assert params["k"].default == core.k
    assert params["tol"].default == core.tol
    assert params["max_k"].default == core.max_k
    assert SCHEMA["tracking"]["k"].maximum == core.max_k + 1  # the config's limit, derived


def _measured_tracker(rng, seed=5, **options):
    A = rng.standard_normal((40, 40))
    A = A + A.T
    tracker = eosfast.SharpnessTracker(k=2, seed=seed, **options)
    for s in (0.0, 0.01, 0.02):
        tracker.measure(A + s * np.diag(np.arange(40.0)))
    return tracker, A


def test_tracker_state_is_the_core_struct_read_only_and_pickles(rng):
    tracker, A = _measured_tracker(rng, grow_above=1.0, value_tol=1e-9)
    state = tracker.state()
    assert isinstance(state, _core.TrackerState)
    with pytest.raises(AttributeError):
        state.k = 3
    assert state.measurements == 3 and state.vectors.shape == (40, state.values.size)
    assert state.options.grow_above == 1.0 and state.options.value_tol == 1e-9
    again = pickle.loads(pickle.dumps(state))
    B = A + 0.03 * np.diag(np.arange(40.0))
    expected = eosfast.SharpnessTracker.from_state(state).measure(B)
    for saved in (again, dict(state)):  # the pickle and the checkpoint's mapping
        restored = eosfast.SharpnessTracker.from_state(saved)
        assert restored._core.seed == tracker._core.seed
        assert restored.options["grow_above"] == 1.0 and restored.options["value_tol"] == 1e-9
        assert restored.options["max_matvecs"] is None
        got = restored.measure(B)
        np.testing.assert_array_equal(got.eigenvalues, expected.eigenvalues)
        np.testing.assert_array_equal(got.eigenvectors, expected.eigenvectors)


def test_tracker_states_of_another_format_are_refused_clearly(rng):
    tracker, _ = _measured_tracker(rng)
    state = tracker.state()
    with pytest.raises(ValueError, match="format 99"):
        eosfast.SharpnessTracker.from_state({**dict(state), "format": 99})
    cls, args = state.__reduce__()
    assert args[-1] == _core.TrackerState.FORMAT
    with pytest.raises(ValueError, match="format 0, this eosfast reads format"):
        cls(*args[:-1], 0)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(state, protocol=protocol))
        np.testing.assert_array_equal(again.vectors, state.vectors)
        assert again.options.seed == state.options.seed


def test_a_checkpoint_written_before_the_struct_still_loads(rng):
    """The tracker state as eosfast 0.1 saved it: a dict with the constructor's options."""
    tracker, A = _measured_tracker(rng, seed=7)
    state = dict(tracker.state())
    legacy = {key: state[key] for key in ("vectors", "values", "older", "k", "rng_state")}
    legacy["measurements"] = state["measurements"]
    legacy["options"] = {
        "k": 2,
        "tol": 1e-6,
        "value_tol": None,
        "grow_above": None,
        "max_k": 64,
        "seed": 7,
        "max_matvecs": None,
    }
    restored = eosfast.SharpnessTracker.from_state(legacy)
    assert restored._core.seed == tracker._core.seed and not math.isnan(
        restored.last.eigenvalues[0]
    )
    B = A + 0.03 * np.diag(np.arange(40.0))
    np.testing.assert_array_equal(restored.measure(B).eigenvalues, tracker.measure(B).eigenvalues)


def test_activations_and_losses_come_from_core():
    from eosfast.problems.mlp import ACTIVATIONS, LOSSES

    assert ACTIVATIONS == _core.ACTIVATIONS and LOSSES == _core.MLP_LOSSES
    assert SCHEMA["problem"]["activation"].choices == _core.ACTIVATIONS
    assert SCHEMA["problem"]["loss"].choices == _core.MLP_LOSSES
    X, Y = np.ones((4, 2)), np.ones((4, 1))
    for activation in _core.ACTIVATIONS:  # every name the checker accepts builds an MLP
        mlp = eosfast.problems.MLP(X, Y, hidden=[3], activation=activation)
        assert mlp.activation == activation
    for loss in _core.MLP_LOSSES:
        labels = np.array([0, 1, 0, 1]) if loss == "ce" else Y
        assert eosfast.problems.MLP(X, labels, hidden=[3], loss=loss).loss_name == loss


def test_bound_classes_pickle_under_eosfast_core_not_their_kernel_variant(rng):
    """A pickle made with one kernel variant (avx2) must load where another (generic) is chosen."""
    tracker, _ = _measured_tracker(rng)
    blob = pickle.dumps(tracker.state())
    assert b"_core_" not in blob and b"eosfast._pickling" in blob  # no variant named
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.vectors, tracker.state().vectors)


# -- record columns, statuses and run defaults (src/cpp/dynamics/records.hpp, runner.hpp)


def test_record_columns_come_from_core():
    from eosfast import _record_stores, records_file, trajectory

    assert trajectory.SCALAR_COLUMNS == tuple(c.name for c in _core.SCALAR_COLUMNS)
    assert trajectory.SHARPNESS_COLUMNS == tuple(c.name for c in _core.SHARPNESS_COLUMNS)
    assert trajectory.SHARPNESS_BLOCKS == tuple(c.name for c in _core.SHARPNESS_BLOCKS)
    assert _record_stores.RECORD_KINDS == _core.RECORD_KINDS == tuple(records_file.GROUPS)
    # the HDF5 schema: one dataset per C++ column, with the C++ description and units
    for kind, columns in (
        ("scalars", _core.SCALAR_COLUMNS),
        ("sharpness", _core.SHARPNESS_COLUMNS + _core.SHARPNESS_BLOCKS),
    ):
        for c in columns:
            key = f"{records_file.GROUPS[kind]}/{c.name}"
            assert records_file.DATASETS[key] == (c.description, c.units)
    widths = _record_stores.widths(dim=5, width=3)
    assert widths["scalars"] == len(_core.SCALAR_COLUMNS)
    assert widths["sharpness"] == len(_core.SHARPNESS_COLUMNS) + 3 * len(_core.SHARPNESS_BLOCKS)


def test_a_trajectory_reads_every_core_column(rng):
    problem = eosfast.problems.Quadratic(np.array([3.0, 1.0, 0.5]))
    traj = eosfast.run(problem, eosfast.GD(0.5), np.ones(3), 12, sharpness_every=3)
    for c in _core.SCALAR_COLUMNS:
        values = traj.steps if c.name == "step" else getattr(traj, c.name)
        assert len(values) == len(traj.steps), c.name
    for c in _core.SHARPNESS_COLUMNS + _core.SHARPNESS_BLOCKS:
        if c.name in (
            "step",
            "ratio",
            "inv_stableness_sum",
            "sqrt_loss_sum",
            "sqrt_loss_reference",
        ):
            continue  # sharpness_steps, and the optimizer's indicators in traj.eos
        assert len(getattr(traj, c.name)) == len(traj.sharpness_steps), c.name
    assert np.allclose(traj.eigenvalues[:, 0], 3.0)


def test_statuses_come_from_core():
    from eosfast import _checkpoint_format, run_folder, trajectory

    names = tuple(s.name for s in _core.RUN_STATUSES)
    assert trajectory.STATUSES == tuple(n for n in names if n != "running")
    assert _checkpoint_format._STATUSES == names
    # one rule for "this run has nothing left to do", for the library and for run folders
    assert run_folder.FINISHED == tuple(s.name for s in _core.RUN_STATUSES if s.ended)
    assert set(run_folder.FINISHED) == {"completed", "converged", "diverged"}
    for s in _core.RUN_STATUSES:
        assert s.name in eosfast.Trajectory.__doc__ or s.name == "running"


def test_run_defaults_come_from_core():
    defaults = _core.RunConfig()
    params = inspect.signature(eosfast.run).parameters
    assert params["diverge_factor"].default == defaults.diverge_factor
    assert SCHEMA["run"]["diverge_factor"].default == defaults.diverge_factor
    assert SCHEMA["run"]["record_every"].default == defaults.record_every


def _accepted_edges(spec):
    """The extreme values the config checker accepts for a numeric key."""
    edges = []
    if spec.minimum is not None:
        if spec.kind == "int":
            edges.append(int(spec.minimum) + (1 if spec.positive else 0))
        else:
            edges.append(spec.minimum + 1e-9 if spec.positive else spec.minimum)
    if spec.maximum is not None:
        edges.append(int(spec.maximum) - 1 if spec.kind == "int" else spec.maximum - 1e-9)
    if spec.infinite:
        edges.append(math.inf)
    return edges


_LIBRARY_KEYS = [
    (table, key)
    for table in ("optimizer", "run", "tracking")
    for key, spec in SCHEMA[table].items()
    if spec.kind in ("int", "float") and key not in ("seed", "threads")
]


@pytest.mark.parametrize("table,key", _LIBRARY_KEYS, ids=lambda v: str(v))
def test_every_value_the_config_accepts_the_library_accepts(table, key):
    from eosfast.builders import build_optimizer

    for value in _accepted_edges(SCHEMA[table][key]):
        raw = {
            "data": {"name": "digits"},
            "optimizer": {"type": "gd", "lr": 0.1},
            "run": {"steps": 3},
        }
        raw.setdefault(table, {})[key] = value
        config = parse_config(raw)  # the checker accepts it ...
        optimizer = build_optimizer(config)  # ... and so does every library object it sets
        tracking, run = config["tracking"], config["run"]
        tracker = eosfast.SharpnessTracker(k=tracking["k"], tol=tracking["tol"])
        problem = eosfast.problems.Quadratic(np.linspace(0.5, 2.0, max(tracking["k"], 2) + 1))
        steps = min(run["steps"], 3)
        traj = eosfast.run(
            problem,
            optimizer,
            np.ones(problem.dim),
            steps,
            sharpness_every=min(tracking["sharpness_every"], steps),
            tracker=tracker,
            record_every=run["record_every"],
            diverge_factor=run["diverge_factor"],
            save_iterates_every=run["save_iterates_every"],
        )
        assert traj.step == steps, (table, key, value)
