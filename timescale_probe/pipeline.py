"""A small cached, resumable step runner (used by ``tsprobe reproduce``).

A step is finished when ``<out>/.steps/<name>.json`` exists, records the same options hash, and all
the files the step declared still exist. A finished step is not recomputed; ``force`` redoes it (and
every step that depends on it). Each step returns a JSON-able dict of results, stored in its record,
which the report reads.
"""
from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import OptionError, TsprobeError
from .fileio import atomic_write_text, jsonable


class StepSkipped(Exception):
    """Raised by a step that cannot run here (e.g. a corpus the user does not have); the reason is reported."""


@dataclass
class Step:
    name: str
    title: str
    run: Callable[["StepContext"], dict[str, Any]]
    needs: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepContext:
    out: Path
    profile: str
    options: dict[str, Any]
    results: dict[str, dict[str, Any]]  # results of the steps already run (by name)
    progress: Callable[[str], None] = lambda msg: None

    def path(self, *parts: str) -> Path:
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def _options_hash(profile: str, options: dict[str, Any]) -> str:
    blob = json.dumps({"profile": profile, "options": jsonable(options)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _record_path(out: Path, name: str) -> Path:
    return out / ".steps" / f"{name}.json"


def load_record(out: Path, name: str) -> dict[str, Any] | None:
    p = _record_path(out, name)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _is_fresh(out: Path, step: Step, profile: str) -> dict[str, Any] | None:
    rec = load_record(out, step.name)
    if rec is None or rec.get("hash") != _options_hash(profile, step.options):
        return None
    if rec.get("status") not in ("done", "skipped"):
        return None
    if any(not (out / f).exists() for f in rec.get("files", [])):
        return None
    return rec


def run_pipeline(
    steps: list[Step],
    out: Path,
    profile: str,
    *,
    force: set[str] | None = None,
    only: set[str] | None = None,
    on_event: Callable[[str, str, str], None] = lambda step, status, msg: None,
) -> dict[str, dict[str, Any]]:
    """Run ``steps`` in order (each after its ``needs``); return every step's record by name.

    ``force``: step names to redo (their dependants are redone too). ``only``: run just these steps
    and what they need. ``on_event(step, status, message)`` reports progress.
    """
    names = [s.name for s in steps]
    by_name = {s.name: s for s in steps}
    for s in steps:
        for n in s.needs:
            if n not in by_name:
                raise OptionError(f"step {s.name} needs unknown step {n}")
    force = set(force or ())
    unknown = (force | set(only or ())) - set(names) - {"all"}
    if unknown:
        raise OptionError(f"unknown step(s) {', '.join(sorted(unknown))}: choose from {', '.join(names)}")
    if "all" in force:
        force = set(names)
    if only:
        wanted: set[str] = set()

        def add(n: str) -> None:
            if n not in wanted:
                wanted.add(n)
                for m in by_name[n].needs:
                    add(m)

        for n in only:
            add(n)
    else:
        wanted = set(names)

    records: dict[str, dict[str, Any]] = {}
    redone: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    for step in steps:
        if step.name not in wanted:
            rec = load_record(out, step.name)
            if rec is not None:
                records[step.name] = rec
            continue
        stale_dep = any(n in redone for n in step.needs)
        rec = None if (step.name in force or stale_dep) else _is_fresh(out, step, profile)
        if rec is not None:
            records[step.name] = rec
            on_event(step.name, "cached", step.title)
            continue
        failed_dep = [n for n in step.needs if records.get(n, {}).get("status") not in ("done",)]
        started = time.time()
        if failed_dep:
            rec = {"status": "skipped", "reason": f"needs {', '.join(failed_dep)}, which did not finish", "results": {}}
        else:
            on_event(step.name, "running", step.title)
            ctx = StepContext(out=out, profile=profile, options=step.options,
                              results={k: v.get("results", {}) for k, v in records.items()},
                              progress=lambda msg, n=step.name: on_event(n, "progress", msg))
            try:
                results = step.run(ctx) or {}
                files = [str(f) for f in results.pop("_files", [])]
                rec = {"status": "done", "results": results, "files": files}
            except StepSkipped as exc:
                rec = {"status": "skipped", "reason": str(exc), "results": {}}
            except TsprobeError as exc:
                rec = {"status": "failed", "reason": str(exc), "results": {}}
            except Exception as exc:  # noqa: BLE001 - a failed step is reported, the pipeline goes on
                rec = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                       "traceback": traceback.format_exc(), "results": {}}
        rec.update({"step": step.name, "title": step.title, "hash": _options_hash(profile, step.options),
                    "profile": profile, "seconds": round(time.time() - started, 2)})
        rec.setdefault("files", [])
        atomic_write_text(_record_path(out, step.name), json.dumps(jsonable(rec), indent=1) + "\n")
        records[step.name] = rec
        redone.add(step.name)
        on_event(step.name, rec["status"], rec.get("reason", step.title))
    return records
