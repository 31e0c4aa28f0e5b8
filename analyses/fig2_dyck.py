"""Fig. 2: Dyck-2 span distribution and sequence accuracy vs max timescale, baseline vs MTS over seeds.

Usage: python analyses/fig2_dyck.py --profile small --out figures/ [--corpus-dir DIR] [--device cuda]

A thin call into :mod:`timescale_probe.reproduce` (the steps of ``fig2_dyck``, cached in
OUT/.steps/); writes PDF + PNG + CSV into OUT and refreshes OUT/report.md. Importing this file
has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "fig2_dyck"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
