"""The analysis protocol: options declared once (validation, run.json, generated CLI), Result.save as
the one writer, claims as data."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from timescale_probe.analysis import Claim, Options, Result, claims_table, find_claim, option, options_command
from timescale_probe.errors import OptionError


def _odd(v: int) -> int:
    if v % 2 == 0:
        raise OptionError(f"window must be odd (got {v})")
    return v


@dataclass(frozen=True)
class ToyOptions(Options):
    layer: int = option(2, "Layer (from 1).", ge=1)
    level: float = option(0.95, "Interval level.", gt=0, lt=1)
    mode: str = option("output", "How units are ablated.", choices=("output", "silence"))
    window: int = option(3, "Odd window.", check=_odd)
    seed: Optional[int] = option(None, "Seed (none: fixed default).", ge=0, le=2**32 - 1)
    all_gates: bool = option(False, "Also input/output gates.")
    edges: tuple[float, ...] = option((1.0, 10.0), "Bin edges.", gt=0)

    def check(self) -> None:
        if list(self.edges) != sorted(self.edges):
            raise OptionError("edges must be ascending", param="edges")


def test_options_validate_each_field_and_name_it():
    assert ToyOptions().layer == 2
    cases = {"layer": 0, "level": 1.0, "mode": "zero", "window": 4, "seed": -1, "all_gates": "yes", "edges": (10.0, 1.0)}
    for name, bad in cases.items():
        with pytest.raises(OptionError) as err:
            ToyOptions(**{name: bad})
        assert err.value.param == name, name
    # integral floats are accepted as ints (a JSON round trip), others are not
    assert ToyOptions(layer=3.0).layer == 3
    with pytest.raises(OptionError):
        ToyOptions(layer=2.5)
    with pytest.raises(OptionError):
        ToyOptions(level=float("nan"))


def test_options_round_trip_and_replace():
    opts = ToyOptions(layer=3, seed=7, edges=[1, 5, 9])
    assert opts.edges == (1.0, 5.0, 9.0)
    data = json.loads(json.dumps(opts.to_dict()))
    assert ToyOptions.from_dict(data) == opts
    assert opts.replace(mode="silence").mode == "silence"
    with pytest.raises(OptionError):
        opts.replace(layer=-1)
    with pytest.raises(OptionError) as err:
        ToyOptions.from_dict({"layers": 2})
    assert "layers" in str(err.value)


@dataclass
class ToyResult(Result):
    command = "toy"

    def claims(self):
        est = float(self.tables["values.csv"]["x"].mean())
        return [Claim(id="toy.mean_positive", statement="the mean is positive", label="beyond the paper",
                      verdict="holds" if est > 0 else "fails", rule="mean > 0", estimate=est, n=3)]


def _result(opts: ToyOptions) -> ToyResult:
    import matplotlib.pyplot as plt

    def fig():
        f, ax = plt.subplots()
        ax.plot([1, 2, 3])
        return f

    return ToyResult(options=opts, tables={"values.csv": pd.DataFrame({"x": [1.0, 2.0, 3.0]}),
                                           "arr.npy": np.arange(4)},
                     figures={"fig.pdf": fig}, summary={"mean": 2.0}, seed=opts.seed)


def test_result_save_writes_everything_once(tmp_path):
    out = _result(ToyOptions(seed=1)).save(tmp_path / "o")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["arr.npy", "claims.csv", "fig.pdf", "run.json", "values.csv"]
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "toy" and run["options"]["seed"] == 1 and run["results"]["mean"] == 2.0
    assert np.load(out / "arr.npy").tolist() == [0, 1, 2, 3]
    claims = pd.read_csv(out / "claims.csv")
    assert claims.loc[0, "id"] == "toy.mean_positive" and claims.loc[0, "verdict"] == "holds"
    # nothing is left beside the output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_claims_are_data_found_by_id():
    c = [Claim(id="a.b", statement="s", label="reproduction", verdict="inconclusive", n=3, sd=0.9, seeds_needed=6)]
    assert find_claim(c, "a.b").seeds_needed == 6
    with pytest.raises(KeyError):
        find_claim(c, "a.c")
    assert list(claims_table(c).columns)[:4] == ["id", "statement", "label", "verdict"]
    with pytest.raises(ValueError):
        Claim(id="x", statement="s", label="pass", verdict="holds")
    with pytest.raises(ValueError):
        Claim(id="two words", statement="s", label="reproduction", verdict="holds")
    assert not Claim(id="x", statement="s", label="by construction", verdict="holds").is_evidence


def test_generated_command_flags_equal_fields(tmp_path):
    app = typer.Typer()
    seen = {}

    @app.callback()
    def _root() -> None:
        pass

    @options_command(app, "toy", ToyOptions, arguments={"path": (Path, "An input.")})
    def toy_cmd(opts: ToyOptions, path: Path) -> None:
        """Toy command."""
        seen["opts"], seen["path"] = opts, path

    runner = CliRunner()
    res = runner.invoke(app, ["toy", "in.txt", "--layer", "3", "--mode", "silence", "--all-gates", "--edges", "2",
                              "--edges", "4", "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert seen["opts"] == ToyOptions(layer=3, mode="silence", all_gates=True, edges=(2.0, 4.0), seed=5)
    assert seen["path"] == Path("in.txt")
    help_text = runner.invoke(app, ["toy", "--help"], terminal_width=200).output
    for flag in ("--layer", "--level", "--mode", "--window", "--seed", "--all-gates", "--no-all-gates", "--edges"):
        assert flag in help_text
    from timescale_probe.analysis.cli import typer_parameters

    helps = {p.name: p.default.help for p in typer_parameters(ToyOptions)}
    assert helps["mode"] == "How units are ablated. [one of: output, silence]"
    assert helps["layer"] == "Layer (from 1). [>= 1]"
    seen.clear()
    res = runner.invoke(app, ["toy", "in.txt", "--layer", "0"])
    assert res.exit_code != 0 and "opts" not in seen
    assert isinstance(res.exception, OptionError) and res.exception.param == "layer"


def test_shared_fields_seed_out_device_threads_and_arguments(tmp_path, monkeypatch):
    """The fields every analysis shares are declared once: seeds within numpy's range, an output
    folder checked (non-empty, creatable, writable) on construction, before any work; argument
    fields become positional arguments; an empty path is refused, not read as '.'."""
    from timescale_probe.analysis.options import SEED_MAX, device_option, out_option, seed_option, threads_option

    @dataclass(frozen=True)
    class Shared(Options):
        inputs: tuple[Path, ...] = option(help="Input files.", argument=True)
        seed: int = seed_option(0, "Seed.")
        out: Path = out_option("o")
        device: str = device_option()
        threads: Optional[int] = threads_option()

    monkeypatch.chdir(tmp_path)
    assert Shared(inputs=("a",)).out == Path("o") and not (tmp_path / "o").exists()  # nothing made
    for bad in ({"seed": -1}, {"seed": SEED_MAX + 1}, {"out": ""}, {"out": "/proc/x"}, {"device": "gpu"},
                {"threads": 0}, {"inputs": ("",)}):
        with pytest.raises(OptionError) as err:
            Shared(**{"inputs": ("a",), **bad})
        assert err.value.param == next(iter(bad)), bad
    (tmp_path / "file").write_text("x")
    with pytest.raises(OptionError, match="is a file"):
        Shared(inputs=("a",), out="file/sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the writability probe left nothing

    app = typer.Typer()
    seen = {}

    @app.callback()
    def _root() -> None:
        pass

    @options_command(app, "shared", Shared)
    def shared_cmd(opts: Shared) -> None:
        """Shared."""
        seen["opts"] = opts

    runner = CliRunner()
    res = runner.invoke(app, ["shared", "x.npy", "y.npy", "--seed", "3", "-o", "res"])
    assert res.exit_code == 0, res.output
    assert seen["opts"].inputs == (Path("x.npy"), Path("y.npy")) and seen["opts"].out == Path("res")
    res = runner.invoke(app, ["shared", "x.npy", "--out", ""])
    assert isinstance(res.exception, OptionError) and res.exception.param == "out"


def test_every_command_options_round_trip_through_run_json(tmp_path, monkeypatch):
    """What run.json records under ``options`` rebuilds the same options (the record is the run)."""
    from timescale_probe.analyses.ablate import AblateOptions
    from timescale_probe.analyses.checkpoint import InspectOptions, TimescalesOptions
    from timescale_probe.analyses.corpus import CorpusInfoOptions
    from timescale_probe.analyses.demo import DemoOptions
    from timescale_probe.analyses.fit import FitOptions
    from timescale_probe.analyses.gates import EstimateOptions
    from timescale_probe.analyses.lm import CompareOptions, EvaluateOptions

    monkeypatch.chdir(tmp_path)
    Path("m.pt").write_bytes(b"x")
    cases = [InspectOptions(checkpoint="m.pt", json=True), TimescalesOptions(checkpoint="m.pt", convention="chrono"),
             FitOptions(inputs=("m.pt",), families="invgamma,frechet", reference_curve="1.4", bootstrap=10, seed=3),
             CorpusInfoOptions(corpus="ptb", bin_edges="10,1K"), DemoOptions(seed=2, threads=1),
             EvaluateOptions(checkpoint="m.pt", batch_size=4), CompareOptions(checkpoint_a="m.pt", checkpoint_b="m.pt"),
             EstimateOptions(checkpoint="m.pt", window=35, max_tokens=100),
             AblateOptions(checkpoint="m.pt", groups="edges:1,10", controls=3, max_tokens=500)]
    for opts in cases:
        back = type(opts).from_dict(json.loads(json.dumps(opts.to_dict())))
        assert back == opts, type(opts).__name__
    assert cases[2].families == ("invgamma", "invweibull") and cases[2].reference_curve == (1.4, 1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # constructing options wrote nothing
