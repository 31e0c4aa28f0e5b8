"""The README and docs say what the code does: the README is short and starts with the two set-up
commands CI runs; its command table is ``tsprobe --help``'s list; its Python example and the Python
guide's examples run as written; the tutorial runs, says what its numbers show, and its page shows
the current code; the generated command reference is current; relative links resolve."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import re

import pytest
import torch
from helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def _run_blocks(blocks: list[str], name: str, monkeypatch) -> tuple[dict, str]:
    """Execute ``blocks`` in order in one namespace from the repository root, on one torch thread."""
    monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = io.StringIO()
    ns: dict = {"__name__": "__docs__"}
    try:
        with contextlib.redirect_stdout(out):
            for k, block in enumerate(blocks, 1):
                exec(compile(block, f"{name} python block {k}", "exec"), ns)
    finally:
        torch.set_num_threads(threads)
    return ns, out.getvalue()


def _cli_commands() -> set[str]:
    """Every command ``tsprobe --help`` lists, groups expanded (``dyck generate``)."""
    import typer

    from timescale_probe.cli import app

    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="tsprobe")
    names = set()
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        if getattr(cmd, "hidden", False):
            continue
        if hasattr(cmd, "list_commands"):
            sub = typer.Context(cmd, info_name=name, parent=ctx)
            names |= {f"{name} {s}" for s in cmd.list_commands(sub)}
        else:
            names.add(name)
    return names


def test_readme_is_short_and_starts_with_the_two_setup_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    first = re.search(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    assert first is not None and text.index(first.group(0)) < 120  # right under the title
    demo_line, test_line = first.group(1).strip().splitlines()
    assert demo_line.endswith("tsprobe demo") and "pip install" in demo_line
    assert test_line.endswith("python -m pytest -q") and "'.[test]'" in test_line
    # .ci/run runs exactly the README's test command (after installing what it needs itself)
    ci = (ROOT / ".ci" / "run").read_text()
    install, _, pytest_cmd = test_line.rpartition(" && ")
    assert install.split(" && ")[-1] in ci and pytest_cmd in ci


def test_readme_command_table_matches_tsprobe_help():
    text = README.read_text()
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    listed: set[str] = set()
    for cell in re.findall(r"^\| `tsprobe ([^`]+)` \|", section, flags=re.M):
        words = cell.replace("\\|", "|").split()
        if len(words) > 1 and "|" in words[1]:  # `dyck generate|train|sweep|plot`
            listed |= {f"{words[0]} {sub}" for sub in words[1].split("|")}
        else:
            listed.add(words[0])
    assert listed == _cli_commands()


def test_readme_python_example_runs(monkeypatch):
    blocks = _python_blocks(README.read_text())
    assert len(blocks) == 1
    ns, out = _run_blocks(blocks, "README.md", monkeypatch)
    assert "[300, 300, 200]" in out  # the shipped small MTS model's layer sizes, printed by the example
    assert set(ns["report"].fits_["family"]) == {"invgamma", "gamma", "lognorm"}
    assert ns["T2"].size == 300


def test_python_guide_examples_run(monkeypatch):
    text = (DOCS / "python.md").read_text()
    blocks = _python_blocks(text)
    joined = "\n".join(blocks)
    for call in ("load_checkpoint", "timescales_table", "fit_timescales", "estimate_timescales",
                 "run_ablation_study", "mi_decay", "run_timescales"):
        assert call in joined, call
    ns, out = _run_blocks(blocks, "docs/python.md", monkeypatch)
    # what the comments in the examples promise
    assert "[300, 300, 200]" in out
    a, b = ns["report"].params("invgamma")
    assert round(a, 2) == 2.16 and round(b, 2) == 1.57
    fits = ns["report"].fits_.set_index("family")
    assert fits.loc["invweibull", "loglik"] > fits.loc["invgamma", "loglik"] > fits.loc["lognorm", "loglik"]
    assert set(ns["est"].table_["layer"]) == {1, 2, 3}
    assert {"ratio", "ratio_lo", "ratio_hi"} <= set(ns["study"].ratios_.columns)
    assert len(ns["mi"].fits) >= 2
    assert "timescales.csv" in ns["result"].tables
    assert "convention -> " in out  # the OptionError names the field


def _load_script(name: str):
    """``scripts/<name>.py`` as a module (registered in ``sys.modules``, as dataclasses need)."""
    import sys

    module_name = f"_scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current():
    generated = _load_script("cli_reference").reference()
    current = (DOCS / "cli.md").read_text()
    assert generated == current, "docs/cli.md is stale: run  python scripts/cli_reference.py > docs/cli.md"
    for command in _cli_commands():
        assert f"## `tsprobe {command}`" in current, command


def test_tutorial_runs_and_its_page_shows_the_current_code(tmp_path):
    threads = torch.get_num_threads()
    try:
        cells, ns = _load_script("render_tutorial").render(tmp_path / "tutorial.md")
    finally:
        torch.set_num_threads(threads)
    code = [c for c in cells if c.kind == "code"]
    page = (DOCS / "tutorial.md").read_text()
    assert _python_blocks(page) == [c.source + "\n" for c in code], \
        "docs/tutorial.md is stale: run  python scripts/render_tutorial.py"
    for name in (f for c in code for f in c.figures):
        assert (tmp_path / "tutorial_files" / name).stat().st_size > 10_000
        assert f"(tutorial_files/{name})" in page and (DOCS / "tutorial_files" / name).is_file()
    # what the tutorial's text says about its numbers
    fits = ns["report"].fits_.set_index("family")
    assert fits.loc["invgamma", "shape_lo"] < 0.56 < fits.loc["invgamma", "shape_hi"]
    assert ns["report"].best("pooled") == "invweibull"
    both = ns["both"]
    layer = {k: rows for k, rows in both.groupby("layer")}
    from scipy.stats import spearmanr

    assert spearmanr(layer[2]["T_bias"], layer[2]["T_data"]).statistic > 0.95
    assert layer[2]["T_data"].median() < layer[2]["T_bias"].median()
    assert layer[1]["T_data"].median() < 1 < round(layer[1]["T_bias"].median(), 3) == 3.5
    ratios = ns["ratios"].pivot(index="group", columns="bin", values="ratio")
    ratios.index = ratios.index.astype(int)  # group labels may be text
    labels = list(ns["labels"])
    assert all(ratios[b].idxmax() == 4 for b in labels)
    assert all(ratios.loc[g, labels[0]] < 1 and (ratios.loc[g, labels[1:]] > 1).all() for g in (1, 2))
    cli_out = code[-1].output
    assert "$ tsprobe timescales ptb-mts-small.pt" in cli_out and "timescales.csv (800 units)" in cli_out
    assert "$ tsprobe fit-distribution" in cli_out and "error" not in cli_out.lower()


@pytest.mark.parametrize("doc", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in DOCS.glob("*.md"))])
def test_relative_links_resolve(doc):
    path = ROOT / doc
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)  # links inside code are not links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0]
        assert (path.parent / file_part).exists(), f"{doc}: link to {target} does not resolve"


def test_architecture_map_lists_every_module_and_nothing_else():
    text = (DOCS / "architecture.md").read_text()
    block = text.split("\n## Module map\n", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"^  (\w[\w.]*/?)\s", block, flags=re.M))
    package = ROOT / "timescale_probe"
    present = {p.name + "/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    present |= {p.name for p in package.iterdir() if p.suffix in (".py", ".typed")}
    assert listed == present, f"missing from docs/architecture.md: {sorted(present - listed)}; " \
                              f"listed but absent: {sorted(listed - present)}"
    top = set(re.findall(r"^(\w[\w]*/)", block, flags=re.M)) - {"timescale_probe/"}
    assert all((ROOT / d).is_dir() for d in top), top


#: docs other helpers own (their flags may land with their code) and the page of script flags
NOT_FLAG_CHECKED = {"cli.md", "benchmarks.md", "recurrent.md", "activity.md", "theory.md",
                    "examples-gru-rnn.md"}  # names scripts/make_example_rnns.py's flags


def test_every_flag_the_docs_name_exists():
    """A renamed or removed flag must not live on in the manual: every ``--flag`` written in the
    README or docs/ is a flag of some tsprobe command (lines about pip are not tsprobe's)."""
    known = set(re.findall(r"--[a-z][a-z0-9-]*", _load_script("cli_reference").reference()))
    docs = [README, *(p for p in sorted(DOCS.glob("*.md")) if p.name not in NOT_FLAG_CHECKED)]
    unknown = []
    for doc in docs:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            if re.search(r"\bpip\b", line):
                continue
            unknown += [f"{doc.name}:{n}: {flag}" for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line)
                        if flag not in known]
    assert not unknown, unknown
