"""Appendix: estimated vs assigned timescales of the MTS model's constrained layers, ours and the authors'.

Usage: python analyses/appendix_mts.py --profile small --out figures/ [--corpus-dir DIR] [--device cuda]

A thin call into :mod:`timescale_probe.reproduce` (the steps of ``appendix_mts``, cached in
OUT/.steps/); writes PDF + PNG + CSV into OUT and refreshes OUT/report.md. Importing this file
has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "appendix_mts"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
