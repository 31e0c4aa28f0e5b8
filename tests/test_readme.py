"""The README's Python examples run as written, from the repository root, in one namespace."""
from __future__ import annotations

import contextlib
import io
import re

import torch
from helpers import ROOT


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)


def test_readme_python_examples_run(monkeypatch):
    blocks = _python_blocks()
    assert len(blocks) >= 3
    joined = "\n".join(blocks)
    for call in ("load_checkpoint", "timescales_table", "fit_timescales", "estimate_timescales",
                 "run_ablation_study", "mi_decay"):
        assert call in joined, call
    monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = io.StringIO()
    ns: dict = {"__name__": "__readme__"}
    try:
        with contextlib.redirect_stdout(out):
            for k, block in enumerate(blocks, 1):
                exec(compile(block, f"README.md python block {k}", "exec"), ns)
    finally:
        torch.set_num_threads(threads)
    # what the comments in the examples promise
    assert "[300, 300, 200]" in out.getvalue()
    a, b = ns["report"].params("invgamma")
    assert round(a, 2) == 2.16 and round(b, 2) == 1.57
    fits = ns["report"].fits_.set_index("family")
    assert fits.loc["invweibull", "loglik"] > fits.loc["invgamma", "loglik"] > fits.loc["lognorm", "loglik"]
    assert set(ns["est"].table_["layer"]) == {1, 2, 3}
    assert {"ratio", "ratio_lo", "ratio_hi"} <= set(ns["study"].ratios_.columns)
    assert len(ns["mi"].fits) >= 2
