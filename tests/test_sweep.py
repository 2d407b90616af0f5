"""Sweeps on Dask distributed: worker planning, thread budgets, failures, skipping finished runs."""

import pytest

pytest.importorskip("distributed")

import eosfast  # noqa: E402
from eosfast.sweep import plan_workers, point_name, run_tasks, sweep_points  # noqa: E402


@pytest.mark.parametrize(
    ("n_tasks", "cores", "threads", "expected"),
    [
        (2, 2, None, (2, 1)),
        (1, 8, None, (1, 8)),
        (3, 8, None, (3, 2)),
        (20, 8, None, (8, 1)),
        (20, 8, 3, (2, 3)),
        (20, 2, 4, (1, 4)),
        (1, 8, 2, (1, 2)),
    ],
)
def test_plan_workers_never_oversubscribes(n_tasks, cores, threads, expected):
    n_workers, per_task = plan_workers(n_tasks, cores, threads)
    assert (n_workers, per_task) == expected
    assert n_workers <= n_tasks
    assert n_workers * per_task <= cores or n_workers == 1


def test_grid_points_and_names():
    points = sweep_points([0.1, 0.25], [0, 1])
    assert points == [
        {"optimizer.lr": 0.1, "run.seed": 0},
        {"optimizer.lr": 0.1, "run.seed": 1},
        {"optimizer.lr": 0.25, "run.seed": 0},
        {"optimizer.lr": 0.25, "run.seed": 1},
    ]
    assert point_name(points[2]) == "lr=0.25_seed=0"
    assert sweep_points([], []) == [{}]


def test_two_tasks_on_a_local_cluster_with_a_failure():
    """Each task sees its thread budget; a failing task is reported, the other completes."""
    done = []
    results = run_tasks(
        eosfast.set_num_threads,
        {"bad": {"n": -1}, "good": {"n": 1}},
        threads_per_task=1,
        cores=2,
        on_done=done.append,
    )
    assert [r.name for r in results] == ["bad", "good"]
    bad, good = results
    assert good.ok and good.value is None
    assert not bad.ok and "ValueError" in bad.error and "n must be >= 0" in bad.traceback
    assert sorted(r.name for r in done) == ["bad", "good"]
    assert good.extra["threads"] == 1 and good.seconds >= 0.0


SWEEP_CONFIG = """
[problem]
hidden = [8]

[data]
name = "digits"
n_samples = 100

[optimizer]
type = "gd"
lr = 0.1

[run]
steps = 30

[tracking]
sharpness_every = 10

[output]
flush_every = 10
"""


def test_two_task_sweep_writes_run_folders_and_skips_finished_ones(tmp_path, capsys):
    pytest.importorskip("h5py")
    pytest.importorskip("sklearn")
    import json

    from eosfast.cli import main

    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP_CONFIG)
    out = tmp_path / "grid"
    args = ["sweep", str(config), "--lr", "0.2", "0.4", "--seed", "5", "--out", str(out)]
    assert main([*args, "--threads-per-task", "1"]) == 0
    printed = capsys.readouterr().out
    assert "lr=0.2_seed=5: completed" in printed and "0 failed" in printed
    report = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in report["results"]] == ["lr=0.2_seed=5", "lr=0.4_seed=5"]
    for row, lr in zip(report["results"], (0.2, 0.4), strict=True):
        assert row["status"] == "completed" and not row["skipped"] and row["threads"] == 1
        summary = json.loads((out / row["name"] / "summary.json").read_text())
        assert summary["lr"] == lr and summary["threads"] == 1 and summary["steps_done"] == 30
        written = (out / row["name"] / "config.toml").read_text()
        assert f"lr = {lr}" in written and "seed = 5" in written
    # a second sweep over the same grid finds every run finished and starts no cluster
    assert main(args) == 0
    assert "2 already finished (skipped)" in capsys.readouterr().out
    # a sweep over part of the grid updates the index instead of overwriting it (issue 18, #7)
    assert main([*args[:3], "0.2", *args[5:]]) == 0
    assert "sweep: 1 runs, 1 already finished (skipped)" in capsys.readouterr().out
    report = json.loads((out / "sweep.json").read_text())
    assert [r["name"] for r in report["results"]] == ["lr=0.2_seed=5", "lr=0.4_seed=5"]
    assert all(r["status"] == "completed" for r in report["results"])


def test_a_damaged_sweep_index_is_refused_before_anything_runs(tmp_path):
    from eosfast.sweep import _read_index

    assert _read_index(tmp_path / "absent.json") == []
    index = tmp_path / "sweep.json"
    for text in ("{not json", '{"rows": []}', '{"results": [1, 2]}', '{"results": [{}]}'):
        index.write_text(text)
        with pytest.raises(ValueError, match="sweep.json is damaged.*move it away"):
            _read_index(index)
    index.write_text('{"results": [{"name": "lr=0.1", "status": "completed"}]}')
    assert _read_index(index) == [{"name": "lr=0.1", "status": "completed"}]


INTERRUPTED_SWEEP_CONFIG = (
    SWEEP_CONFIG.replace("n_samples = 100", "n_samples = 200")
    .replace("steps = 30", "steps = 20000")
    .replace("sharpness_every = 10", "sharpness_every = 50")
    .replace("flush_every = 10", "flush_every = 500\ncheckpoint_every = 5000\nfigures = false")
)


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_with_every_run_checkpointed_and_the_same_command_continues(tmp_path):
    """Ctrl-C in a terminal (SIGINT to the whole process group) while two runs go and a third
    waits: exit 130, each started run stopped at a checkpoint of its last step, the waiting
    one never started, the index says so; the same command then
    finishes every run with records bitwise equal to uninterrupted runs."""
    pytest.importorskip("h5py")
    pytest.importorskip("sklearn")
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    from eosfast.cli import main
    from eosfast.io import load_checkpoint
    from eosfast.records_file import read_records

    config = tmp_path / "sweep.toml"
    config.write_text(INTERRUPTED_SWEEP_CONFIG)
    out = tmp_path / "grid"
    args = ["sweep", str(config), "--lr", "0.1", "0.15", "0.2", "--seed", "1", "--out", str(out)]
    args += ["--threads-per-task", "1", "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, eosfast.cli; sys.exit(eosfast.cli.main(sys.argv[1:]))"]
        + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/stream"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # both runs have begun (a run takes seconds; a slice hands back in 0.2 s)
    os.killpg(proc.pid, signal.SIGINT)
    start = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert time.monotonic() - start < 30, "the sweep took too long to stop"
    assert "Traceback" not in err, err
    rows = {r["name"]: r for r in json.loads((out / "sweep.json").read_text())["results"]}
    statuses = sorted(r["status"] for r in rows.values())
    assert statuses == ["interrupted", "interrupted", "not_started"], rows
    for name, row in rows.items():
        if row["status"] != "interrupted":
            continue
        state = load_checkpoint(out / name / "checkpoint.npz")
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert 0 <= state["runner"]["step"] == summary["steps_done"] < 20000
        assert state["signal"] == "SIGINT"  # written by the stop itself, not a periodic one
    # the same command continues every run; each equals a run that was never interrupted
    assert main(args) == 0
    rows = json.loads((out / "sweep.json").read_text())["results"]
    assert [r["status"] for r in rows] == ["completed"] * 3, rows
    for row in rows:
        folder, ref = out / row["name"], tmp_path / f"ref-{row['name']}"
        assert main(["run", str(folder / "config.toml"), "-q", "--out", str(ref)]) == 0
        ours, theirs = read_records(folder / "records.h5"), read_records(ref / "records.h5")
        for group, name in (("steps", "loss"), ("sharpness", "eigenvalues")):
            np.testing.assert_array_equal(ours[group][name], theirs[group][name])
        np.testing.assert_array_equal(ours["x_final"], theirs["x_final"])
