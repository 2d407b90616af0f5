"""``eosfast demo``: the Edge of Stability on scikit-learn's handwritten digits.

Part 1 (Cohen et al. 2021): a tanh MLP trained by full-batch GD on the MSE loss at several
learning rates; the sharpness rises until it reaches 2 / lr and then hovers there while the loss
keeps falling, non-monotonically.

Part 2 (Arora, Li & Panigrahi 2022): on a smaller subset, which the same network can fit exactly
(more parameters than targets, so the minimisers form a manifold), GD first gets near a minimiser;
from there Normalized GD and GD on sqrt(L) run at the edge of stability: 1/S_t + 1/S_{t+1} stays
near 1 (NGD), sqrt(L_t) + sqrt(L_{t+1}) near its predicted value, and the sharpness decreases
along the manifold.
"""

from __future__ import annotations

from pathlib import Path

from .config import parse_config

# Part 1: 1000 digits, 64-32-32-10 tanh MLP (3466 parameters)
_FULL = {"n_samples": 1000, "lrs": (0.25, 0.3, 0.5), "steps": 2000, "every": 10}
_QUICK = {"n_samples": 400, "lrs": (0.3, 0.5), "steps": 500, "every": 10}
# Part 2: 200 digits (2000 targets < 3466 parameters)
_FULL2 = {"n_samples": 200, "fit_steps": 4000, "steps": 2000, "every": 20}
_QUICK2 = {"n_samples": 200, "fit_steps": 1500, "steps": 600, "every": 20}
_FIT_LR, _NGD_LR, _SQRT_LR = 0.3, 0.06, 0.04


def _config(name, out, n_samples, optimizer, lr, steps, every, init_from=None):
    raw = {
        "problem": {"type": "mlp", "hidden": [32, 32], "activation": "tanh", "loss": "mse"},
        "data": {"name": "digits", "n_samples": n_samples, "targets": "onehot"},
        "optimizer": {"type": optimizer, "lr": lr},
        "run": {"steps": steps, "seed": 0},
        "tracking": {"sharpness_every": every, "k": 1, "tol": 1e-6},
        "output": {
            "dir": str(out / name),
            "checkpoint_every": max(100, steps // 4),
            "flush_every": 100,
        },
    }
    if init_from is not None:
        raw["run"]["init_from"] = str(out / init_from)
    return name, raw


def demo_configs(out, quick: bool = False) -> list:
    """The demo's runs in order, as ``(name, raw config dict)``; later runs start from earlier
    ones (so each is validated with :func:`eosfast.config.parse_config` just before it runs)."""
    out = Path(out)
    p1, p2 = (_QUICK, _QUICK2) if quick else (_FULL, _FULL2)
    runs = [
        _config(f"gd_lr{lr:g}", out, p1["n_samples"], "gd", lr, p1["steps"], p1["every"])
        for lr in p1["lrs"]
    ]
    n2, every2 = p2["n_samples"], p2["every"]
    runs.append(_config("fit", out, n2, "gd", _FIT_LR, p2["fit_steps"], 5 * every2))
    for name, opt, lr in (("ngd", "ngd", _NGD_LR), ("sqrtgd", "sqrtgd", _SQRT_LR)):
        runs.append(_config(name, out, n2, opt, lr, p2["steps"], every2, init_from="fit"))
    return runs


def run_demo(out="eosfast-demo", quick: bool = False, quiet: bool = False) -> dict:
    """Run the demo into ``out``; print and return the summary table.

    Returns
    -------
    dict
        ``{"runs": {name: summary}, "figures": [paths]}``, also in ``out/summary.json``.
    """
    import eosfast

    from . import plot
    from .analysis import indicator_text
    from .experiment import run_experiment
    from .records_file import read_records
    from .run_folder import write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not quiet:
        info = eosfast.info()
        print(
            f"eosfast {info['version']} ({info['variant']} kernels, "
            f"{eosfast.get_num_threads()} threads): the Edge of Stability on handwritten digits"
        )
    summaries = {}
    for name, raw in demo_configs(out, quick):
        config = parse_config(raw, source=f"demo:{name}")
        summaries[name] = run_experiment(config, out / name, progress=not quiet, restart=True)
    rows = []
    for name, s in summaries.items():
        rows.append((name, s, indicator_text(s, s["optimizer"])))
    panel_runs = []
    for name, s in summaries.items():
        if name.startswith("gd_"):
            rec = read_records(out / name / "records.h5")
            panel_runs.append(
                {
                    "lr": s["lr"],
                    "steps": rec["steps"]["step"],
                    "loss": rec["steps"]["loss"],
                    "sharpness_steps": rec["sharpness"]["step"],
                    "sharpness": rec["sharpness"]["eigenvalues"],
                }
            )
    figures = plot.save_figure(plot.multi_lr(panel_runs), out / "figures" / "gd_multi_lr")
    for name in ("ngd", "sqrtgd"):
        kind = "ngd_indicators" if name == "ngd" else "sqrt_indicators"
        figures += [out / name / "figures" / f"{kind}.{ext}" for ext in ("png", "svg")]
    result = {"runs": summaries, "figures": [str(p) for p in figures], "quick": quick}
    write_json_atomic(out / "summary.json", result)
    if not quiet:
        print(format_table(rows))
        print(f"figures: {out / 'figures'} and each run's figures/ folder")
    return result


def format_table(rows) -> str:
    """The summary table: run, final loss, the run's own EoS indicators, time.

    Examples
    --------
    >>> from eosfast.demo import format_table
    >>> row = ("gd_lr0.5", {"final_loss": 0.01, "seconds": 2.0}, "lambda_1*lr/2 = 1.010")
    >>> print(format_table([row]).splitlines()[0])
    run       final loss  edge-of-stability indicators (last quarter; each about 1)  time
    """
    indicators = "edge-of-stability indicators (last quarter; each about 1)"
    header = ("run", "final loss", indicators, "time")
    lines = [header]
    for name, s, indicators in rows:
        lines.append(
            (
                name,
                "n/a" if s.get("final_loss") is None else f"{s['final_loss']:.3e}",
                indicators,
                f"{s.get('seconds', 0.0):.1f} s",
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        "lambda_1*lr/2: GD's sharpness over its stability threshold 2/lr.",
        "1/S_t + 1/S_{t+1}: NGD's inverse stableness sum, S_t = lambda_1 lr / |grad L(x_t)|.",
        "sqrt(L) sum / prediction: (sqrt(L_t) + sqrt(L_{t+1})) over lr sqrt(lambda_1/2) (NGD) "
        "or lr lambda_1/2 (GD on sqrt(L)).",
    ]
    return "\n".join([*text, *notes])
