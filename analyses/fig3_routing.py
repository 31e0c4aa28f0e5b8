"""Fig. 3: routing of information by timescale: perplexity ratio per word-frequency bin when chunks of the MTS model's layer-2 units are ablated, beside the authors' ratios.

Usage: python analyses/fig3_routing.py --profile small --out figures/ [--corpus-dir DIR] [--device cuda]

A thin call into :mod:`timescale_probe.reproduce` (the steps of ``fig3_routing``, cached in
OUT/.steps/); writes PDF + PNG + CSV into OUT and refreshes OUT/report.md. Importing this file
has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "fig3_routing"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
