"""Fig. 1: sorted unit timescales (T_data) of baseline LSTM LMs on PTB, WikiText-2 and Markov-PTB, with inverse-gamma fits, beside the authors' published timescales.

Usage: python analyses/fig1_timescales.py --profile small --out figures/ [--corpus-dir DIR] [--device cuda]

A thin call into :mod:`timescale_probe.reproduce` (the steps of ``fig1_timescales``, cached in
OUT/.steps/); writes PDF + PNG + CSV into OUT and refreshes OUT/report.md. Importing this file
has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "fig1_timescales"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
