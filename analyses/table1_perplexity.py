"""Table 1: test perplexity per word-frequency bin, baseline vs MTS, with the paired chunk bootstrap (and WikiText-2 when available).

Usage: python analyses/table1_perplexity.py --profile small --out figures/ [--corpus-dir DIR] [--device cuda]

A thin call into :mod:`timescale_probe.reproduce` (the steps of ``table1_perplexity``, cached in
OUT/.steps/); writes PDF + PNG + CSV into OUT and refreshes OUT/report.md. Importing this file
has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "table1_perplexity"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
