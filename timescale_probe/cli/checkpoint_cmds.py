"""``tsprobe inspect`` and ``tsprobe timescales``: what a checkpoint holds, and its units' timescales
from their forget biases (thin wrappers over :mod:`timescale_probe.checkpoints`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import app
from ._common import console, example

FORMAT_HELP = ("Force a loader: auto, tsprobe, state-dict, pickle (whole pickled models, read safely), safetensors, "
               "keras (.keras, .weights.h5, legacy .h5), keras-npz, tf1-npz.")
DIRECTION_HELP = "Direction of a Keras Bidirectional LSTM to read: forward or backward (the notes report both)."
TF_BIAS_HELP = "Forget bias TensorFlow-1 LSTMCell adds at run time (not stored in its weights); added back for tf1-npz."


def _fmt(v) -> str:
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:.4g}"
    return "-" if v is None else str(v)


@app.command("inspect", epilog=example(
    "tsprobe inspect awd_ptb.pt",
    "tsprobe inspect model.pt --json > model.json",
    "tsprobe inspect keras_lstm.npz --format keras-npz",
    "tsprobe inspect model.keras",
))
def inspect_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint: tsprobe, state dict, whole pickled AWD-LSTM or "
                                      "word_language_model (read without running its code), safetensors, Keras "
                                      ".keras/.weights.h5/.h5 (read with h5py), Keras/TF1 .npz."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write inspect.json and run.json into this folder."),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    tf_forget_bias: float = typer.Option(1.0, "--tf-forget-bias", help=TF_BIAS_HELP),
    direction: str = typer.Option("forward", "--direction", help=DIRECTION_HELP),
) -> None:
    """Show what a checkpoint holds: format found, layers and sizes, vocabulary size, parameter count,
    tied embedding, MTS spec, and notes on how it was read."""
    from ..checkpoints import load_checkpoint
    from ..checkpoints.report import describe_stack
    from ..fileio import OutputStage, atomic_write_text, jsonable, write_run_json

    stage = OutputStage(out) if out is not None else None
    stack = load_checkpoint(checkpoint, format=format, tf_forget_bias=tf_forget_bias, direction=direction)
    info = describe_stack(stack)
    text = json.dumps(jsonable(info), indent=2)
    if stage is not None:
        with stage:
            atomic_write_text(stage.path / "inspect.json", text + "\n")
            write_run_json(stage.path, "inspect", {"checkpoint": checkpoint, "format": format,
                                                   "tf_forget_bias": tf_forget_bias, "direction": direction},
                           inputs=[checkpoint],
                           results={"source_format": info["source_format"], "parameters": info["parameters"]})
    if json_out:
        print(text)
        return
    from rich import box
    from rich.table import Table

    t = Table(title=f"{checkpoint}", box=box.SIMPLE_HEAD, show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("format", info["source_format"])
    t.add_row("layers", f"{info['layers']} (sizes {', '.join(map(str, info['layer_sizes']))}; input {info['input_size']})")
    t.add_row("vocabulary", f"{_fmt(info['vocab_size'])} ({'stored' if info['has_vocab'] else 'not stored'})")
    t.add_row("embedding", "x".join(map(str, info["embedding"])) if info["embedding"] else "-")
    t.add_row("decoder", "x".join(map(str, info["decoder"])) if info["decoder"] else "-")
    t.add_row("tied", str(info["tied"]))
    t.add_row("parameters", f"{info['parameters']:,}")
    t.add_row("MTS spec", _fmt(info["mts_spec"]))
    if info["config"]:
        t.add_row("config", ", ".join(f"{k}={v}" for k, v in info["config"].items()))
    t.add_row("sha256", str(info["sha256"])[:16] + "...")
    console.print(t)
    lt = Table(box=box.SIMPLE_HEAD)
    for col in ("layer", "input", "units", "parameters", "median forget bias"):
        lt.add_column(col, justify="right")
    for row in info["layer_table"]:
        lt.add_row(str(row["layer"]), str(row["input_size"]), str(row["hidden_size"]), f"{row['parameters']:,}",
                   f"{row['forget_bias_median']:.4g}")
    console.print(lt)
    for note in info["notes"]:
        console.print(f"note: {note}", soft_wrap=True)


@app.command("timescales", epilog=example(
    "tsprobe timescales awd_ptb.pt --out out/",
    "tsprobe timescales model.pt --out out/ --convention chrono",
))
def timescales_cmd(
    checkpoint: Path = typer.Argument(..., help="Checkpoint in any supported format (see tsprobe inspect --help)."),
    out: Path = typer.Option(Path("timescales_out"), "--out", "-o", help="Output folder: timescales.csv, "
                             "timescales_summary.csv and run.json."),
    convention: str = typer.Option("paper", "--convention", help="paper: T = -1/log(sigmoid(b_f)) (Mahto et al.); "
                                   "chrono: T = 1/(1 - sigmoid(b_f)) (Tallec & Ollivier)."),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    tf_forget_bias: float = typer.Option(1.0, "--tf-forget-bias", help=TF_BIAS_HELP),
    direction: str = typer.Option("forward", "--direction", help=DIRECTION_HELP),
) -> None:
    """Timescale of every unit from its effective forget bias b_f = bias_ih[f] + bias_hh[f]; writes
    timescales.csv (layer, unit, forget_bias, T_bias; layers from 1, T in time steps) and prints
    per-layer median, maximum and share of units with T > 10."""
    from rich import box
    from rich.table import Table

    from ..checkpoints import load_checkpoint
    from ..checkpoints.report import LONG_T, timescale_summary
    from ..fileio import OutputStage, write_run_json, write_table
    from ..timescales import check_convention

    check_convention(convention)
    stage = OutputStage(out)
    stack = load_checkpoint(checkpoint, format=format, tf_forget_bias=tf_forget_bias, direction=direction)
    table = stack.timescales_table(convention)
    summary = timescale_summary(table)
    out_dir = stage.path
    write_table(table, out_dir / "timescales.csv")
    write_table(summary, out_dir / "timescales_summary.csv")
    share_col = f"share_gt_{LONG_T:g}"
    write_run_json(
        out_dir, "timescales",
        {"checkpoint": checkpoint, "convention": convention, "format": format, "tf_forget_bias": tf_forget_bias,
         "direction": direction},
        inputs=[checkpoint],
        results={"source_format": stack.provenance.source_format, "notes": stack.provenance.notes,
                 "summary": summary.to_dict(orient="records")},
    )
    stage.commit()
    t = Table(title=f"timescales from forget biases ({convention} convention, steps) - {stack.provenance.source_format}",
              box=box.SIMPLE_HEAD)
    for col in ("layer", "units", "median T", "max T", f"share T>{LONG_T:g}"):
        t.add_column(col, justify="right")
    for row in summary.to_dict(orient="records"):
        t.add_row(row["layer"], str(row["units"]), _fmt(row["T_median"]), _fmt(row["T_max"]), f"{100 * row[share_col]:.1f}%")
    console.print(t)
    console.print(f"wrote {out / 'timescales.csv'} ({len(table)} units)")
