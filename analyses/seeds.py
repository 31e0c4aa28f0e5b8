"""Seeds combined: Table 1, Fig. 3 and the Markov control over this run's models and the per-seed folders (figures/seeds/), paired by seed, with the validation gap MTS vs baseline per epoch.

Usage: python analyses/seeds.py --profile small --out figures/

A thin call into :mod:`timescale_probe.reproduce` (the ``seeds`` step, redone every time from the
cached steps' outputs and ``figures/seeds/*``); writes seeds.pdf/png and table1_seeds.csv,
table1_per_seed.csv, fig3_seeds.csv, validation_gap.csv into OUT and refreshes OUT/report.md.
Importing this file has no side effects.
"""
from __future__ import annotations

from timescale_probe.reproduce import analysis_main

FIGURE = "seeds"


def main(argv: list[str] | None = None) -> int:
    return analysis_main(FIGURE, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
