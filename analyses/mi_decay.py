"""Mutual-information decay I(d) of the corpora (PTB, Markov-PTB, WikiText-2, Brown, KJV, War and Peace) with exponential / power-law fits.

Usage: python analyses/mi_decay.py --profile small --out figures/ [--corpus-dir DIR] [--device cuda]

A thin call into :mod:`timescale_probe.reproduce` (the steps of ``mi_decay``, cached in
OUT/.steps/); writes PDF + PNG + CSV into OUT and refreshes OUT/report.md. Importing this file
has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "mi_decay"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
