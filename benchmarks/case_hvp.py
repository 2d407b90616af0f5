"""Case 1: one HVP and one block HVP (m = 8) of an MLP, eosfast against PyTorch.

Also times the gradient (HVP / gradient cost ratio) and reports GFLOP/s and eosfast's
fraction of the measured DGEMM rate, from the FLOP counts in ``_models.MLPSpec``.
"""

from __future__ import annotations

import numpy as np
from _harness import Context, Row, failed, measure, threads
from _models import FULL_SIZES, QUICK_SIZES, eosfast_mlp, init_params, make_data
from _peers import TorchHVP

CASE = "1-hvp"
BLOCK = 8


def sizes(ctx: Context):
    return list((QUICK_SIZES if ctx.quick else FULL_SIZES).values())


def run(ctx: Context, nthreads=None, specs=None, case=CASE, precisions=("f64", "f32")):
    nthreads = nthreads or ctx.nthreads
    rows: list[Row] = []
    with threads(nthreads):
        for spec in specs or sizes(ctx):
            rows += _one_size(ctx, spec, nthreads, case, precisions)
    return rows


def _one_size(ctx: Context, spec, nthreads: int, case: str, precisions) -> list[Row]:
    X, Y = make_data(spec)
    x = init_params(spec)
    rng = np.random.default_rng(1)
    v = rng.standard_normal(spec.params)
    V = np.asfortranarray(rng.standard_normal((spec.params, BLOCK)))
    gemm = ctx.gemm(nthreads)
    rows: list[Row] = []
    tag = f"{spec.label} threads={nthreads}"

    def add(setting, method, t, flops, eos=False, precision="f64", **metrics):
        gflops = flops / t.best / 1e9
        metrics = {"GFLOP/s": gflops, **metrics}
        if eos:
            metrics["frac_gemm"] = gflops * 1e9 / gemm
        rows.append(
            Row(
                case,
                f"{setting} {tag}",
                method,
                t.best,
                eos,
                precision,
                t.median,
                t.repeats,
                metrics,
            )
        )

    mt = ctx.min_time
    try:
        _eosfast_rows(spec, X, Y, x, v, V, mt, add)
    except Exception as exc:  # reported in the table, not hidden
        rows.append(failed(case, f"HVP {tag}", "eosfast", exc, True))
    _torch_rows(spec, X, Y, x, v, V, mt, add, precisions)
    return rows


def _eosfast_rows(spec, X, Y, x, v, V, mt, add) -> None:
    mlp = eosfast_mlp(spec, X, Y)
    t_grad = measure(lambda: mlp.grad(x), min_time=mt)
    t_hvp = measure(lambda: mlp.hvp(x, v), min_time=mt)
    H = mlp.hessian(x)
    t_op = measure(lambda: H.matvec(v), min_time=mt)
    t_block = measure(lambda: mlp.hvp(x, V), min_time=mt)
    t_op_block = measure(lambda: H.matvec(V), min_time=mt)
    add("gradient", "eosfast grad(x)", t_grad, spec.grad_flops(), eos=True)
    add(
        "HVP",
        "eosfast hvp(x, v)",
        t_hvp,
        spec.hvp_flops(),
        eos=True,
        hvp_over_grad=t_hvp.best / t_grad.best,
    )
    add(
        "HVP",
        "eosfast hessian(x) @ v (cached forward)",
        t_op,
        spec.hvp_flops(cached=True),
        eos=True,
    )
    add(
        f"block HVP m={BLOCK}",
        f"eosfast hvp(x, V[:, :{BLOCK}])",
        t_block,
        spec.hvp_flops(BLOCK),
        eos=True,
        block_speedup=BLOCK * t_hvp.best / t_block.best,
    )
    add(
        f"block HVP m={BLOCK}",
        f"eosfast hessian(x) @ V[:, :{BLOCK}] (cached forward)",
        t_op_block,
        spec.hvp_flops(BLOCK, cached=True),
        eos=True,
        block_speedup=BLOCK * t_op.best / t_op_block.best,
    )


def _torch_rows(spec, X, Y, x, v, V, mt, add, precisions) -> None:
    for precision in precisions:
        th = TorchHVP(spec, x, X, Y, precision)
        tv = th.torch.as_tensor(v, dtype=th.dtype)
        tV = th.torch.as_tensor(np.ascontiguousarray(V.T), dtype=th.dtype)
        p = precision
        t = measure(lambda th=th: th.loss_and_grad(), min_time=mt)
        add("gradient", f"torch autograd grad ({p})", t, spec.grad_flops(), precision=p)
        for name, fn in (
            ("torch double-backward", th.double_backward),
            ("torch double-backward, graph reused", th.reused),
            ("torch.func jvp(grad) fwd-over-rev", th.forward_over_reverse),
        ):
            t = measure(lambda fn=fn, tv=tv: fn(tv), min_time=mt)
            flops = spec.hvp_flops(cached="reused" in name)
            add("HVP", f"{name} ({p})", t, flops, precision=p)
        for name, fn in (
            ("torch double-backward reused, is_grads_batched", th.reused_block),
            ("torch.func vmap(jvp(grad))", th.func_block),
            ("torch double-backward reused, loop", lambda W, th=th: [th.reused(w) for w in W]),
        ):
            t = measure(lambda fn=fn, tV=tV: fn(tV), min_time=mt)
            flops = spec.hvp_flops(BLOCK, cached="reused" in name)
            add(f"block HVP m={BLOCK}", f"{name} ({p})", t, flops, precision=p)
