"""The analyses behind the commands, each on the protocol of :mod:`timescale_probe.analysis`: a frozen
options class (fields = the command's flags, with their help and constraints, validated on
construction, before any work), a ``run_*`` function returning a :class:`~timescale_probe.analysis.Result`
whose ``save(out)`` writes every table, figure and ``run.json``. The command line, ``reproduce`` and
Python users call the same objects::

    from timescale_probe.analyses.checkpoint import TimescalesOptions, run_timescales

    result = run_timescales(TimescalesOptions(checkpoint="model.pt", convention="chrono"))
    result.tables["timescales.csv"]   # the table; result.save("out/") writes it with run.json

Modules: :mod:`.checkpoint` (inspect, timescales), :mod:`.fit` (fit-distribution), :mod:`.lm`
(evaluate, compare), :mod:`.gates` (estimate-timescales), :mod:`.ablate` (ablate), :mod:`.demo`.
Each module imports only light modules at import time (the CLI builds its commands from the
options classes), and torch, pandas and scipy inside ``run_*``.
"""
