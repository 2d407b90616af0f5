"""The ``eosfast`` command line: demo, run, plot, sweep and info.

eosfast demo [--out DIR] [--quick]
eosfast run CONFIG.toml [--out DIR] [--restart] [--quiet]
eosfast plot RUN_DIR
eosfast sweep CONFIG.toml --lr 0.01 0.02 --seed 0 1 [--scheduler tcp://...]
eosfast info
"""

from __future__ import annotations

import argparse
import json
import sys

_OPTIONAL = ("scikit-learn", "matplotlib", "h5py", "tqdm", "distributed", "torch")


def _cmd_info(args) -> int:
    from importlib.metadata import PackageNotFoundError, version

    import eosfast

    facts = eosfast.info()
    facts["optional_packages"] = {}
    for name in _OPTIONAL:
        try:
            facts["optional_packages"][name] = version(name)
        except PackageNotFoundError:
            facts["optional_packages"][name] = None
    print(json.dumps(facts, indent=2))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, quick=args.quick, quiet=args.quiet)
    return 0


def _cmd_run(args) -> int:
    from . import _signals

    # SIGINT / SIGTERM from here on stop the run at a consistent step (see eosfast._signals)
    with _signals.deferred():
        from .builders import mpi_world
        from .config import load_config
        from .experiment import run_experiment
        from .run_folder import RunDir

        config = load_config(args.config)
        out = args.out or config["output"]["dir"]
        comm = mpi_world()
        if comm is not None and comm.Get_rank() != 0:
            args.quiet = True  # rank 0 reports for the job
        was_finished = not args.restart and RunDir(out).finished()
        summary = run_experiment(config, out, progress=not args.quiet, restart=args.restart)
        if not args.quiet:
            if was_finished:
                print(f"{out} holds a finished run: nothing ran (pass --restart to run it again)")
            print(_summary_line(summary))
            print(f"run folder: {out}")
        # a signal after the last step interrupted nothing: the run's own status stands
        if _signals.received() is not None and summary["status"] == "interrupted":
            if not args.quiet:
                print(
                    f"interrupted by {_signals.signal_name(_signals.received())}: the folder "
                    "holds a checkpoint of the last step; run the same command to continue"
                )
            return _signals.EXIT_CODES[_signals.received()]
    return _EXIT_CODES.get(summary["status"], 0)


_EXIT_CODES = {"diverged": 3, "interrupted": 130}


def _cmd_plot(args) -> int:
    from pathlib import Path

    from .plot import plot_run

    if not Path(args.run_dir).is_dir():
        raise _UsageError(
            f"{args.run_dir} is not a folder; give the run folder of an `eosfast run`"
        )
    paths = plot_run(args.run_dir)
    if not args.quiet:
        for path in paths:
            print(path)
    return 0


def _cmd_sweep(args) -> int:
    from . import _signals

    # SIGINT / SIGTERM from here on stop every run at a consistent step (see eosfast.sweep)
    with _signals.deferred():
        return _sweep(args)


def _sweep(args) -> int:
    from . import _signals
    from .config import load_config
    from .sweep import require_dask, sweep

    config = load_config(args.config)
    try:
        require_dask()
    except ModuleNotFoundError as exc:
        raise _UsageError(str(exc)) from None
    out = args.out or config["output"]["dir"]

    def report(result):
        if args.quiet:
            return
        if result.ok:
            print(f"{result.name}: {result.value['status']} in {result.seconds:.1f} s", flush=True)
        elif result.extra.get("not_started"):
            print(f"{result.name}: not started", flush=True)
        else:
            print(f"{result.name}: FAILED: {result.error}", flush=True)

    outcome = sweep(
        config,
        out,
        lrs=args.lr or (),
        seeds=args.seed or (),
        scheduler=args.scheduler,
        threads_per_task=args.threads_per_task,
        on_done=report,
    )
    rows = outcome["results"]
    failed = [row for row in rows if row["status"] == "failed"]
    if not args.quiet:
        skipped = sum(row["skipped"] for row in rows)
        print(
            f"sweep: {len(rows)} runs, {skipped} already finished (skipped), "
            f"{len(failed)} failed; see {out}/sweep.json"
        )
    if _signals.received() is not None:
        if not args.quiet:
            print(
                f"interrupted by {_signals.signal_name(_signals.received())}: every run folder "
                "holds a checkpoint of its last step; run the same command to continue"
            )
        return _signals.EXIT_CODES[_signals.received()]
    return 1 if failed else 0


def _summary_line(summary: dict) -> str:
    parts = [f"status {summary['status']}", f"steps {summary.get('steps_done')}"]
    if summary.get("final_loss") is not None:
        parts.append(f"final loss {summary['final_loss']:.4g}")
    if summary.get("sharpness_ratio") is not None:
        parts.append(f"sharpness / threshold {summary['sharpness_ratio']:.3f}")
    parts.append(f"{summary.get('seconds', 0.0):.1f} s")
    return ", ".join(parts)


class _UsageError(Exception):
    """A bad command line or input the user can fix: one line, exit code 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eosfast",
        description="Gradient descent at the Edge of Stability: experiments from the shell.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
        p.add_argument("--debug", action="store_true", help="print the full traceback of an error")
        p.set_defaults(func=func)
        return p

    command("info", _cmd_info, "print build and thread information")

    p = command("demo", _cmd_demo, "EoS on the handwritten digits: GD at several lr, NGD, sqrt(L)")
    p.add_argument("--out", default="eosfast-demo", help="output folder (default: eosfast-demo)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smaller version (about 25 s of CPU time; minutes on a busy machine)",
    )

    p = command("run", _cmd_run, "run (or resume) the experiment of a TOML configuration")
    p.add_argument("config", help="the configuration file")
    p.add_argument("--out", help="run folder (default: [output] dir of the config)")
    p.add_argument(
        "--restart", action="store_true", help="start over instead of resuming or skipping"
    )

    p = command("plot", _cmd_plot, "(re)draw the figures of a run folder")
    p.add_argument("run_dir")

    p = command("sweep", _cmd_sweep, "run a configuration over learning rates and seeds on Dask")
    p.add_argument("config")
    p.add_argument("--lr", type=float, nargs="+", help="learning rates")
    p.add_argument("--seed", type=int, nargs="+", help="initialisation seeds")
    p.add_argument("--out", help="sweep folder (default: [output] dir of the config)")
    p.add_argument("--scheduler", help="an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument(
        "--threads-per-task",
        type=_positive_int,
        help="eosfast threads per task (default: cores / workers)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code = _main(args)
    if code in _FAILED and "mpi4py.MPI" in sys.modules:
        _abort_other_ranks(code)
    return code


_FAILED = (1, 2)  # the exit codes of errors (not of a diverged or interrupted run)


def _abort_other_ranks(code: int) -> None:
    """Under mpiexec a rank that fails alone would leave the others waiting: end the job.

    Failures inside the problem's evaluations reach every rank at once (see
    :mod:`eosfast.distributed`); this covers the rest (a file one rank cannot read, ...).
    """
    from mpi4py import MPI

    if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(code)


def _main(args) -> int:
    from . import _signals
    from .config import ConfigError
    from .io import DamagedFileError

    try:
        return args.func(args)
    except ConfigError as exc:
        if args.debug:
            raise
        print(f"eosfast: configuration error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eosfast: interrupted", file=sys.stderr)
        return _signals.EXIT_CODES.get(_signals.received(), 130)
    except (
        _UsageError,
        DamagedFileError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        FileExistsError,
        PermissionError,
    ) as exc:
        if args.debug:
            raise
        print(f"eosfast: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, an I/O error: the folder keeps its last checkpoint
        if args.debug:
            raise
        print(
            f"eosfast: {_one_line(exc)}; the run folder keeps its last checkpoint and "
            "records: free space (or fix the device) and run the same command to continue",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:
        if args.debug:
            raise
        hint = "(rerun with --debug for the traceback)"
        print(f"eosfast: {type(exc).__name__}: {_one_line(exc)} {hint}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    """The message of an exception on a single line."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename is None:
        text = exc.strerror  # without the "[Errno N]" prefix: eosfast's own messages name the file
    text = " ".join(text.split())
    return text or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
