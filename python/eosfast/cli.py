"""The ``eosfast`` command line."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args) -> int:
    import eosfast

    print(json.dumps(eosfast.info(), indent=2))
    return 0


def _cmd_demo(args) -> int:
    import numpy as np

    import eosfast

    print(json.dumps(eosfast.info(), indent=2))
    rng = np.random.default_rng(0)
    B = rng.standard_normal((50, 50))
    problem = eosfast.problems.Quadratic(B @ B.T / 50)
    H = problem.hessian(np.zeros(problem.dim)).to_dense()
    print(f"sharpness of a 50-dim random quadratic: {np.linalg.eigvalsh(H)[-1]:.6f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eosfast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print build and thread information").set_defaults(func=_cmd_info)
    sub.add_parser("demo", help="run the demo experiment").set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
