"""Results that save and judge themselves.

An analysis returns a :class:`Result` subclass. Its tables (tidy DataFrames or arrays, keyed by
the one file name each has everywhere), its figures (builders, drawn only when saved), a
summary and provenance are data; :meth:`Result.save` is the one writer of all of them plus
``run.json`` (the options as data, the seed, input hashes, versions, summary) and, when the result
makes claims, ``claims.csv``. The CLI, ``reproduce`` and the per-seed tables call the same
``save``, so a table has one name wherever it appears.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, ClassVar

from .claims import Claim, claims_table
from .options import Options

__all__ = ["Result", "save_into"]


@dataclasses.dataclass
class Result:
    """Base of every analysis's result.

    Subclasses set :attr:`command` (the CLI command / analysis name) and fill :attr:`tables`
    (``{"ratios.csv": DataFrame, "token_nll.npy": ndarray}``), :attr:`figures`
    (``{"fig.pdf": callable returning a matplotlib Figure}``), :attr:`summary` (JSON-able
    numbers a reader wants first) and :attr:`provenance` (seconds, device, token counts, notes);
    :meth:`claims` returns what the result says as :class:`Claim` data.
    """

    command: ClassVar[str] = "analysis"

    options: Options
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: dict[str, Callable[[], Any]] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    inputs: list[Path] = dataclasses.field(default_factory=list)
    seed: int | None = None

    def claims(self) -> list[Claim]:
        """What this result claims (none by default)."""
        return []

    def save(self, out: str | os.PathLike, *, figures: bool = True) -> Path:
        """Write everything into ``out`` all or nothing (a staged folder renamed into place);
        returns ``out``."""
        from ..fileio import OutputStage

        with OutputStage(out) as stage:
            save_into(self, stage.path, figures=figures)
        return Path(out)

    def written_files(self, figures: bool = True) -> list[str]:
        """The file names :meth:`save` writes, in order."""
        names = list(self.tables) + (list(self.figures) if figures else [])
        if self.claims():
            names.append("claims.csv")
        return names + ["run.json"]


def save_into(result: Result, directory: str | os.PathLike, *, figures: bool = True) -> Path:
    """Write ``result`` into an existing folder (inside a stage, or a pipeline step's folder)."""
    import numpy as np

    from ..fileio import atomic_write_with, save_figure, write_run_json, write_table

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npy":
            def _npy(p, a=table):
                with open(p, "wb") as fh:
                    np.save(fh, np.asarray(a), allow_pickle=False)
            atomic_write_with(path, _npy)
        elif path.suffix in (".md", ".txt") or isinstance(table, str):
            atomic_write_with(path, lambda p, t=table: Path(p).write_text(str(t)))
        elif path.suffix == ".json" and isinstance(table, (dict, list)):  # a record, not a table
            import json

            from ..fileio import jsonable

            atomic_write_with(path, lambda p, t=table: Path(p).write_text(json.dumps(jsonable(t), indent=2) + "\n"))
        else:
            write_table(table, path)
    if figures:
        for name, build in result.figures.items():
            save_figure(build(), directory / name)
    claims = result.claims()
    if claims:
        write_table(claims_table(claims), directory / "claims.csv")
    results = dict(result.summary)
    if result.provenance:
        results["provenance"] = result.provenance
    results["files"] = result.written_files(figures)
    write_run_json(directory, result.command, result.options.to_dict(), seed=result.seed,
                   inputs=[p for p in result.inputs if p is not None and Path(p).is_file()], results=results)
    return directory
