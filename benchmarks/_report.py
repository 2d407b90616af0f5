"""Ratios against the best peer, the issue's targets, and the markdown report."""

from __future__ import annotations

from collections import OrderedDict

from _harness import Row, finite, fmt_time, fmt_value

# Cases where the quantity compared is not the wall time.
MEMORY_CASE = "6-memory"


def _key(row: Row) -> float:
    if row.case == MEMORY_CASE:
        return row.metrics.get("peak_MiB", float("nan"))
    return row.seconds


def groups(rows: list[Row]) -> OrderedDict:
    out: OrderedDict = OrderedDict()
    for r in rows:
        out.setdefault((r.case, r.setting), []).append(r)
    return out


def summary(rows: list[Row]) -> list[dict]:
    """Per (case, setting): eosfast's best entry against the best f64 peer and the best peer.

    ``speedup`` = peer / eosfast (time, or peak memory for case 6): above 1, eosfast wins.
    """
    out = []
    for (case, setting), members in groups(rows).items():
        eos = [r for r in members if r.eosfast and r.peer and finite(_key(r))]
        peers = [r for r in members if not r.eosfast and r.peer and finite(_key(r))]
        if not eos:
            continue
        best = min(eos, key=_key)
        entry = {"case": case, "setting": setting, "eosfast": best.method, "value": _key(best)}
        for label, pool in (("f64", [p for p in peers if p.precision == "f64"]), ("any", peers)):
            if pool:
                peer = min(pool, key=_key)
                entry[f"peer_{label}"] = peer.method
                entry[f"peer_{label}_value"] = _key(peer)
                entry[f"speedup_{label}"] = _key(peer) / _key(best)
        out.append(entry)
    return out


def _find(rows, case, setting_part, method_part=None, eosfast=None):
    for r in rows:
        if r.case != case or setting_part not in r.setting:
            continue
        if method_part is not None and method_part not in r.method:
            continue
        if eosfast is not None and r.eosfast != eosfast:
            continue
        yield r


def targets(rows: list[Row], summ: list[dict]) -> list[dict]:
    """The issue's targets, evaluated on what this run measured (absent ones are skipped)."""
    out = []

    def add(name, value, goal, ok):
        out.append({"target": name, "measured": value, "goal": goal, "met": bool(ok)})

    for s in summ:
        if s["case"] != "1-hvp" or not s["setting"].startswith("HVP "):
            continue
        size = s["setting"].split("[", 1)[1].split("]", 1)[0]
        if "speedup_f64" not in s:
            continue
        if size == "1e5":
            add(
                f"HVP {size}: speedup vs fastest torch f64",
                s["speedup_f64"],
                ">= 2",
                s["speedup_f64"] >= 2,
            )
        if size in ("1e6", "1e7"):
            add(
                f"HVP {size}: speedup vs fastest torch f64",
                s["speedup_f64"],
                ">= 1",
                s["speedup_f64"] >= 1,
            )
    for r in rows:
        if (
            r.case == "1-hvp"
            and r.eosfast
            and "frac_gemm" in r.metrics
            and r.setting.startswith(("HVP [1e6]", "HVP [1e7]"))
        ):
            f = r.metrics["frac_gemm"]
            add(f"{r.method} {r.setting.split()[1]}: fraction of DGEMM rate", f, ">= 0.5", f >= 0.5)
    for s in summ:
        if s["case"] != "2-sharpness":
            continue
        members = [r for r in rows if r.case == s["case"] and r.setting == s["setting"]]
        eos = next((r for r in members if r.eosfast), None)
        arp = next((r for r in members if r.method == "scipy ARPACK on eosfast HVP"), None)
        top = s["setting"].split()[0]
        if eos and arp:
            add(
                f"sharpness {top}: matvecs eosfast / ARPACK",
                eos.metrics["matvecs"] / arp.metrics["matvecs"],
                "<= 1",
                eos.metrics["matvecs"] <= arp.metrics["matvecs"],
            )
        for name in ("pyhessian", "hessian-eigenthings"):
            pool = [r for r in members if r.method.startswith(name)]
            if eos and pool:
                ratio = min(r.seconds for r in pool) / eos.seconds
                add(f"sharpness {top}: speedup vs {name}", ratio, ">= 5", ratio >= 5)
    for s in summ:
        if s["case"] == "3-tracking" and "every 50" in s["setting"]:
            members = [r for r in rows if r.case == s["case"] and r.setting == s["setting"]]
            warm = next((r for r in members if "ARPACK warm" in r.method), None)
            eos = next((r for r in members if r.eosfast and r.peer), None)
            if warm and eos:
                ratio = warm.seconds / eos.seconds
                add(
                    "EoS run (every 50): speedup vs torch GD + warm ARPACK",
                    ratio,
                    ">= 5",
                    ratio >= 5,
                )
    for s in summ:
        if s["case"] == "4-overhead":
            members = [r for r in rows if r.case == s["case"] and r.setting == s["setting"]]
            numpy_row = next((r for r in members if r.method == "numpy loop"), None)
            eos_rec = next(
                (r for r in members if r.eosfast and "record_every=1)" in r.method), None
            )
            if numpy_row:
                ratio = numpy_row.seconds / s["value"]
                add(
                    f"{s['setting'].split()[0]} per-step: speedup vs numpy loop",
                    ratio,
                    ">= 50",
                    ratio >= 50,
                )
            if numpy_row and eos_rec:  # like for like: the numpy loop records every loss too
                ratio = numpy_row.seconds / eos_rec.seconds
                add(
                    f"{s['setting'].split()[0]} per-step, recording every step: speedup vs numpy",
                    ratio,
                    ">= 50",
                    ratio >= 50,
                )
            if eos_rec:
                add(
                    f"{s['setting'].split()[0]} per-step time, recording every step",
                    eos_rec.seconds,
                    "<= 200 ns",
                    eos_rec.seconds <= 200e-9,
                )
    for r in rows:  # case 5's contention rows: t(default threads) / t(1 thread)
        if not (r.eosfast and r.setting.startswith("contention [") and "slowdown" in r.metrics):
            continue
        condition, what = r.setting[len("contention [") :].split("] ", 1)
        op = what.split(" [", 1)[0]
        if condition != "idle":
            add(
                f"contention ({condition}) {op}: t(default) / t(1 thread)",
                r.metrics["slowdown"],
                "<= 1.5",
                r.metrics["slowdown"] <= 1.5,
            )
        elif op in ("gradient", "HVP") and r.metrics["default_threads"] > 1:
            add(
                f"idle {op}: speed-up of the default over 1 thread",
                1 / r.metrics["slowdown"],
                "> 1",
                r.metrics["slowdown"] < 1,
            )
    return out


def markdown(info: dict, rows: list[Row], summ: list[dict], targ: list[dict], title: str) -> str:
    lines = [f"# {title}", ""]
    v = info["versions"]
    e = info["eosfast_info"]
    lines += [
        f"- CPU: {info['cpu_model']} ({info['usable_cores']} usable cores, flags "
        f"{' '.join(info['cpu_flags'])}); load average at start {info['load_average'][0]:.2f}",
        f"- eosfast {v['eosfast']} variant {e.get('variant')} threads {e.get('num_threads')}; "
        f"torch {v['torch']}; numpy {v['numpy']}; scipy {v['scipy']}; pyhessian {v['pyhessian']}; "
        f"hessian-eigenthings {v['hessian-eigenthings']}",
        f"- clock: {info.get('clock', 'wall time')}",
        "- DGEMM rate (numpy): "
        + ", ".join(f"{n} thread(s): {r / 1e9:.1f} GFLOP/s" for n, r in info["gemm_rate"].items()),
        "",
        "## Summary: eosfast against the best peer",
        "",
        "speedup = peer / eosfast (time; peak memory for case 6); above 1 eosfast wins.",
        "",
        "| case | setting | eosfast | best f64 peer | speedup | best peer (any) | speedup |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summ:
        fmt = _mem if s["case"] == MEMORY_CASE else fmt_time
        lines.append(
            f"| {s['case']} | {s['setting']} | {s['eosfast']}: {fmt(s['value'])} | "
            f"{s.get('peer_f64', '-')}: {fmt(s.get('peer_f64_value', float('nan')))} | "
            f"{_x(s.get('speedup_f64'))} | {s.get('peer_any', '-')} | {_x(s.get('speedup_any'))} |"
        )
    if targ:
        lines += [
            "",
            "## The issue's targets",
            "",
            "| target | measured | goal | met |",
            "|---|---|---|---|",
        ]
        for t in targ:
            lines.append(
                f"| {t['target']} | {fmt_value(t['measured'])} | {t['goal']} | "
                f"{'yes' if t['met'] else '**no**'} |"
            )
    for case in sorted({r.case for r in rows}):
        lines += [
            "",
            f"## Case {case}",
            "",
            "| setting | method | time (best) | metrics |",
            "|---|---|---|---|",
        ]
        for r in rows:
            if r.case != case:
                continue
            metrics = ", ".join(f"{k}={fmt_value(val)}" for k, val in r.metrics.items())
            if r.note:
                metrics = f"{metrics}; {r.note}" if metrics else r.note
            tag = " **(eosfast)**" if r.eosfast else ""
            lines.append(f"| {r.setting} | {r.method}{tag} | {fmt_time(r.seconds)} | {metrics} |")
    lines += contention_table(rows)
    return "\n".join(lines) + "\n"


def contention_table(rows: list[Row]) -> list[str]:
    """Case 5's contention rows side by side: t(default) / t(1 thread), eosfast and PyTorch."""
    table: dict[tuple[str, str], dict] = {}
    for r in rows:
        if not r.setting.startswith("contention [") or "slowdown" not in r.metrics:
            continue
        condition, what = r.setting[len("contention [") :].split("] ", 1)
        op = what.split(" [", 1)[0]
        entry = table.setdefault((condition, op), {"load": r.metrics["load_average_1min"]})
        entry["eosfast" if r.eosfast else "torch"] = r
    if not table:
        return []
    out = [
        "",
        "## Contention: t(default threads) / t(1 thread), same run",
        "",
        "| condition | operation | eosfast 1 thread | eosfast default | eosfast ratio "
        "| torch 1 thread | torch default | torch ratio | load average |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (condition, op), e in table.items():
        cells = []
        for lib in ("eosfast", "torch"):
            r = e.get(lib)
            cells += (
                [
                    fmt_time(r.metrics["seconds_1_thread"]),
                    fmt_time(r.seconds),
                    _x(r.metrics["slowdown"]),
                ]
                if r
                else ["-", "-", "-"]
            )
        out.append(f"| {condition} | {op} | {' | '.join(cells)} | {e['load']:.2f} |")
    return out


def _x(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mem(value) -> str:
    return "-" if not finite(value) else f"{value:.1f} MiB"
