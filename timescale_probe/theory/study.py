"""Training runs of a theory study, their measurements, the run cache, and the study loop.

One run = one (k, arm, seed): the seed draws the training/validation/test data *and* the initial
weights, so every arm of a seed sees the same data and arms are paired by seed. Every arm uses the
same optimiser (Adam), learning rate and early stopping (stop after ``patience`` epochs without a
better validation loss, best-validation weights kept), up to ``max_epochs``; the per-epoch
validation losses are the learning curves.

Measured per factor-study run, on the test streams (each a column run from its own start, as the
exact predictor sees it; the first token of a stream is not scored), in nats per token:
``loss`` (all tokens), ``slow_loss`` (tokens of slow factors), ``slow_state_loss``
(``-log q(b | j)``: the part of a slow token's loss that memory can lower, the model's own
factor probability divided out), ``fast_state_loss``, and the exact Bayes predictor's values of
each (``bayes_*``; ``bayes_slow_state_loss_n50`` etc. with only the last n tokens). Tree-study runs
measure ``loss`` (``test_loss``) as the first study did, with the exact Bayes bound beside it.
The baseline's layer timescales ``T_data`` (:func:`timescale_probe.gates.estimate_timescales`)
give the learned shape (:mod:`timescale_probe.theory.shape`).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import OptionError
from .profiles import FactorProfile, StudyProfile, TreeProfile, imposed_timescales, profile_from_dict


def _stream_logprobs(model, streams: np.ndarray, bptt: int, device) -> tuple[np.ndarray, np.ndarray]:
    """``(token_logp, state_logp)`` of tokens 1.. of every stream (rows of ``streams``, one batch
    column each, hidden state carried over ``bptt`` windows). ``state_logp`` is ``log q(b | j)``:
    the token's log-probability less that of its factor, ``log(q(2j) + q(2j+1))``."""
    import torch

    x = torch.as_tensor(np.asarray(streams, dtype=np.int64).T.copy(), device=device)  # (N, S)
    n = x.size(0)
    tok = torch.empty((n - 1, x.size(1)), dtype=torch.float64)
    state = torch.empty_like(tok)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            hidden = model.init_hidden(x.size(1))
            for i in range(0, n - 1, bptt):
                seq = min(bptt, n - 1 - i)
                logits, hidden, _ = model(x[i:i + seq], hidden)
                logp = torch.log_softmax(logits.double(), dim=-1)
                y = x[i + 1:i + 1 + seq]
                t = logp.gather(-1, y[..., None])[..., 0]
                partner = logp.gather(-1, (y ^ 1)[..., None])[..., 0]
                tok[i:i + seq] = t.cpu()
                state[i:i + seq] = (t - torch.logaddexp(t, partner)).cpu()
    finally:
        model.train(was)
    return tok.numpy().T, state.numpy().T


def bayes_factor_metrics(prof: FactorProfile, k: float, test: dict[str, np.ndarray]) -> dict[str, float]:
    """The exact Bayes predictor's losses on a seed's test streams (tokens 1.. of each), with the
    whole past and with only the last n tokens (``prof.windows``)."""
    from .bayes import factor_bayes_logp

    src = prof.source(k)
    x = test["tokens"]
    fac = x[:, 1:] // 2
    slow = src.slow[fac]
    lw = np.log(src.usage[fac])
    out = {"slow_tokens": int(slow.sum()), "scored_tokens": int(slow.size)}
    for w in (None, *prof.windows):
        lp = factor_bayes_logp(src, x, w)[:, 1:]
        tag = "" if w is None else f"_n{w}"
        out[f"bayes_loss{tag}"] = float(-lp.mean())
        out[f"bayes_slow_loss{tag}"] = float(-lp[slow].mean())
        out[f"bayes_slow_state_loss{tag}"] = float(-(lp - lw)[slow].mean())
        out[f"bayes_fast_state_loss{tag}"] = float(-(lp - lw)[~slow].mean())
    return out


def _factor_measure(model, prof: FactorProfile, k: float, test: dict[str, np.ndarray], device) -> dict[str, float]:
    src = prof.source(k)
    tok, state = _stream_logprobs(model, test["tokens"], prof.bptt, device)
    slow = src.slow[test["tokens"][:, 1:] // 2]
    row = {"loss": float(-tok.mean()), "slow_loss": float(-tok[slow].mean()),
           "slow_state_loss": float(-state[slow].mean()), "fast_state_loss": float(-state[~slow].mean())}
    row.update(bayes_factor_metrics(prof, k, test))
    row["excess_slow_state"] = row["slow_state_loss"] - row["bayes_slow_state_loss"]
    return row


def bayes_tree_metrics(prof: TreeProfile, k: float, seed: int) -> dict[str, float]:
    """The exact Bayes predictor's leaf loss on a seed's test trees, whole tree prefix and last n."""
    from .bayes import tree_bayes_logp
    from .sources import lam_for_k, tree_split_trees

    trees = tree_split_trees(k, seed, prof.depth, prof.n_symbols, prof.split_trees)["test"]
    lam = lam_for_k(k)
    out = {}
    for w in (None, *prof.windows):
        lp = np.concatenate([tree_bayes_logp(t, prof.n_symbols, lam, w) for t in trees])
        out["bayes_loss" if w is None else f"bayes_loss_n{w}"] = float(-lp.mean())
    return out


def build_corpus(prof: StudyProfile, k: float, seed: int):
    """``(corpus, test)`` of one seed (``test``: the factor study's test streams, else None)."""
    if isinstance(prof, FactorProfile):
        from .sources import factor_corpus

        return factor_corpus(prof.source(k), seed, prof.train_tokens, prof.valid_tokens, prof.test_streams,
                             prof.test_tokens)
    from .sources import tree_corpus

    return tree_corpus(k, seed, prof.depth, prof.n_symbols, prof.split_trees), None


def _mean_nll(model, stream, batch_size: int, bptt: int, device) -> float:
    from ..evaluation import token_nll

    nll, _ = token_nll(model, stream, batch_size=batch_size, bptt=bptt, device=device)
    return float(np.mean(nll))


def run_arm(job: dict[str, Any]) -> dict[str, Any]:
    """Train one arm for one (k, seed) and measure it; returns ``{'row', 'curve', 'timescales'}``.
    ``job``: k, seed, arch, spec, profile (dict), workdir, device, threads."""
    import torch

    from ..checkpoints import load_checkpoint
    from ..gates import estimate_timescales
    from ..models import LanguageModel
    from ..training import train_language_model
    from .shape import hill_tail_index, learned_shape

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    prof = profile_from_dict(job["profile"])
    k, seed, arch, spec = float(job["k"]), int(job["seed"]), job["arch"], job["spec"]
    corpus, test = build_corpus(prof, k, seed)
    out = Path(job["workdir"]) / f"{prof.source_kind}-k{k:g}-{arch}-seed{seed}.pt"
    t0 = time.time()
    p = prof.dropout
    res = train_language_model(
        corpus, out, arch="baseline" if spec is None else "mts", profile="tiny", mts_spec=spec,
        model_overrides=dict(emb_size=prof.emb_size, layer_sizes=prof.layer_sizes, dropout=p, dropouth=p, dropouti=p,
                             dropoute=0.0, wdrop=p, tie_weights=True),
        train_overrides=dict(epochs=prof.max_epochs, batch_size=prof.batch_size, eval_batch_size=prof.eval_batch_size,
                             test_batch_size=prof.eval_batch_size, bptt=prof.bptt, optimizer="adam", lr=prof.lr,
                             alpha=0.0, beta=0.0, wdecay=0.0, clip=0.25, seed=seed, patience=prof.patience,
                             min_epochs=prof.min_epochs),
        device=job.get("device", "cpu"), final_eval=False, log=lambda msg: None)
    train_s = time.time() - t0
    device = torch.device(job.get("device", "cpu"))
    model = LanguageModel.from_stack(load_checkpoint(out)).to(device).eval()
    card = res.card
    row = {"source": prof.source_kind, "k": k, "arch": arch, "seed": seed, "mts_spec": spec or "baseline",
           "epochs_run": int(card["epochs"]), "best_epoch": int(card["best_epoch"]),
           "stopped_early": bool(card.get("stopped_early", False)),
           "best_valid_loss": _mean_nll(model, corpus.tokens("valid"), prof.eval_batch_size, prof.bptt, device),
           "train_seconds": train_s, "parameters": int(card["parameters"]),
           "train_tokens": int(corpus.tokens("train").numel()), "test_tokens": int(corpus.tokens("test").numel())}
    if isinstance(prof, FactorProfile):
        row.update(_factor_measure(model, prof, k, test, device))
    else:
        row["loss"] = row["test_loss"] = _mean_nll(model, corpus.tokens("test"), prof.eval_batch_size, prof.bptt, device)
        row.update(bayes_tree_metrics(prof, k, seed))
    row["test_ppl"] = math.exp(row["loss"])
    imposed = imposed_timescales(spec, prof.layer_sizes, prof.imposed_layer)
    row["imposed_T_median"] = float(np.median(imposed)) if imposed is not None else float("nan")
    row["imposed_above_50"] = int((imposed > 50).sum()) if imposed is not None else -1
    m = res.metrics
    curve = pd.DataFrame({"source": prof.source_kind, "k": k, "arch": arch, "seed": seed, "epoch": m["epoch"].astype(int),
                          "train_loss": m["train_loss"].astype(float), "valid_loss": m["valid_loss"].astype(float)})
    ts = None
    if arch == "baseline":
        est = estimate_timescales(model, corpus.tokens("test"), batch_size=prof.eval_batch_size, device=device)
        tab = est.table_
        ts = pd.DataFrame({"source": prof.source_kind, "k": k, "seed": seed, "layer": tab["layer"].astype(int),
                           "unit": tab["unit"].astype(int), "T_data": tab["T_data"].astype(float)})
        layer = tab.loc[tab["layer"] == prof.imposed_layer, "T_data"]
        row.update(learned_shape(layer, fraction=prof.tail_fraction, n_boot=prof.n_boot, seed=seed))
        row["a_tail_all_layers"] = hill_tail_index(tab["T_data"], prof.tail_fraction)[0]
    return {"row": row, "curve": curve, "timescales": ts}


def run_oracle(job: dict[str, Any]) -> dict[str, Any]:
    """The oracle basis of one (k, arm, seed) of a factor study (:mod:`timescale_probe.theory.oracle`):
    the arm's imposed timescales, a readout fitted on the seed's training stream, scored like the LMs."""
    from .oracle import fit_oracle, oracle_logp

    prof = profile_from_dict(job["profile"])
    k, seed, arch, spec = float(job["k"]), int(job["seed"]), job["arch"], job["spec"]
    src = prof.source(k)
    T = imposed_timescales(spec, prof.layer_sizes, prof.imposed_layer)
    kk = int(round(k * 1000))
    train = src.sample(prof.oracle_train_tokens, (seed, kk, 0, 0))["tokens"]
    _, test = build_corpus(prof, k, seed)
    t0 = time.time()
    fitted = fit_oracle(src, train, T)
    lp = oracle_logp(src, fitted, test["tokens"], T)[:, 1:]
    fac = test["tokens"][:, 1:] // 2
    slow = src.slow[fac]
    lw = np.log(src.usage[fac])
    row = {"source": "factor", "k": k, "arch": arch, "seed": seed, "oracle_loss": float(-lp.mean()),
           "oracle_slow_state_loss": float(-(lp - lw)[slow].mean()),
           "oracle_fast_state_loss": float(-(lp - lw)[~slow].mean()), "oracle_seconds": time.time() - t0}
    b = bayes_factor_metrics(prof, k, test)
    row["bayes_slow_state_loss"] = b["bayes_slow_state_loss"]
    row["oracle_excess_slow_state"] = row["oracle_slow_state_loss"] - b["bayes_slow_state_loss"]
    return {"oracle": row}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """A worker's entry: a training run or an oracle fit."""
    return run_oracle(job) if job.get("kind") == "oracle" else run_arm(job)


# ----------------------------------------------------------------------------------------------
# the run cache (plain JSON, never executed)
# ----------------------------------------------------------------------------------------------

#: Profile fields that need not match for a cached run to be reused.
_CACHE_IGNORED = ("seeds", "ks", "name", "description", "oracle_seeds")


def cache_key(job: dict[str, Any]) -> str:
    kind = "oracle-" if job.get("kind") == "oracle" else ""
    src = profile_from_dict(job["profile"]).source_kind
    return f"{kind}{src}-k{float(job['k']):g}-{job['arch']}-seed{int(job['seed'])}.json"


def _cache_profile(prof: StudyProfile) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in prof.to_dict().items() if k not in _CACHE_IGNORED}))


def cache_write(cache_dir: str | os.PathLike, job: dict[str, Any], result: dict[str, Any]) -> None:
    from ..fileio import atomic_write_text

    payload = {"profile": _cache_profile(profile_from_dict(job["profile"]))}
    for name, value in result.items():
        payload[name] = value.to_dict(orient="list") if isinstance(value, pd.DataFrame) else value
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    atomic_write_text(Path(cache_dir) / cache_key(job), text + "\n")


def cache_read(cache_dir: str | os.PathLike, job: dict[str, Any]) -> dict[str, Any] | None:
    """A finished run from the cache, or None. A run cached with other settings is an error."""
    path = Path(cache_dir) / cache_key(job)
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if _cache_profile(profile_from_dict(job["profile"])) != payload["profile"]:
            raise OptionError(f"cache_dir {cache_dir} holds {path.name} made with other settings; use another "
                              "cache folder", param="cache_dir")
        out: dict[str, Any] = {}
        for name in ("row", "oracle"):
            if name in payload:
                out[name] = payload[name]
        for name in ("curve", "timescales"):
            if name in payload:
                out[name] = None if payload[name] is None else pd.DataFrame(payload[name])
        if not out:
            raise KeyError("no results")
        return out
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise OptionError(f"cache_dir: {path} is not a theory-run cache file ({exc})", param="cache_dir") from None


# ----------------------------------------------------------------------------------------------
# the study loop
# ----------------------------------------------------------------------------------------------

def study_jobs(prof: StudyProfile, *, device: str, threads: int | None, workdir: str) -> list[dict[str, Any]]:
    """Every run of a study, seed by seed (all k and arms of the first seed first, its oracle fits
    before its training runs), so a partial cache holds whole seeds."""
    jobs = []
    pd_ = prof.to_dict()
    for seed in prof.seeds:
        for k in prof.ks:
            specs = prof.arm_specs(k)
            if isinstance(prof, FactorProfile) and seed in prof.oracle_seeds:
                jobs += [{"kind": "oracle", "k": k, "seed": seed, "arch": arch, "spec": specs[arch], "profile": pd_}
                         for arch in prof.arms if specs[arch] is not None]
            jobs += [{"kind": "train", "k": k, "seed": seed, "arch": arch, "spec": specs[arch], "profile": pd_,
                      "workdir": workdir, "device": device, "threads": threads} for arch in prof.arms]
    return jobs


def run_study(prof: StudyProfile, *, jobs: int = 1, device: str = "cpu", threads: int | None = None,
              cache_dir: str | os.PathLike | None = None, progress: Any = False,
              log=None) -> dict[str, pd.DataFrame]:
    """Run every job of ``prof`` (``jobs`` worker processes; cached runs reused) and return the
    tables ``results``, ``curves``, ``timescales``, ``oracle`` and ``sources``."""
    import tempfile

    from ..progress import LOGGER, as_progress

    log = log or LOGGER.info
    sources = []
    for k in prof.ks:
        if isinstance(prof, FactorProfile):
            from .sources import measure_factor_source

            s = measure_factor_source(prof.source(k), prof.mi_tokens, max_distance=prof.mi_max_distance,
                                      n_distances=prof.mi_distances, shuffles=prof.mi_shuffles)
        else:
            from .sources import measure_tree_source

            s = measure_tree_source(k, n_trees=prof.mi_trees, depth=prof.depth, n_symbols=prof.n_symbols,
                                    max_distance=prof.mi_max_distance, n_distances=prof.mi_distances,
                                    shuffles=prof.mi_shuffles)
        sources.append(s)
        log(f"source k={k:g}: measured k={s['k_measured']:.3f} [{s['k_measured_low']:.3f}, {s['k_measured_high']:.3f}]")
    if threads is None:  # the one default rule, shared by the worker processes
        from ..fileio import default_threads

        threads = default_threads(jobs)
    rows, curves, tss, oracles = [], [], [], []
    bar = as_progress(progress)
    with tempfile.TemporaryDirectory(prefix="tsprobe-theory-") as work:
        todo, done = [], []
        for job in study_jobs(prof, device=str(device), threads=threads, workdir=work):
            hit = cache_read(cache_dir, job) if cache_dir is not None else None
            (done if hit is not None else todo).append((job, hit))
        bar.start(len(todo) + len(done), f"theory study: {len(todo)} runs" + (f" ({len(done)} cached)" if done else ""))

        def collect(job, r, fresh=True):
            if fresh and cache_dir is not None:
                cache_write(cache_dir, job, r)
            if "oracle" in r:
                oracles.append(r["oracle"])
            else:
                rows.append(r["row"])
                curves.append(r["curve"])
                if r.get("timescales") is not None:
                    tss.append(r["timescales"])
                rr = r["row"]
                log(f"k={rr['k']:g} seed={rr['seed']} {rr['arch']}: loss {rr['loss']:.4f} "
                    f"(best epoch {rr['best_epoch']}/{rr['epochs_run']}, {rr['train_seconds']:.0f} s)")
            bar.advance(1)

        try:
            for job, hit in done:
                collect(job, hit, fresh=False)
            if int(jobs) == 1:
                for job, _ in todo:
                    collect(job, run_job(job))
            elif todo:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor, as_completed

                with ProcessPoolExecutor(max_workers=int(jobs), mp_context=mp.get_context("spawn")) as ex:
                    futures = {ex.submit(run_job, job): job for job, _ in todo}
                    for fut in as_completed(futures):
                        collect(futures[fut], fut.result())
        finally:
            bar.done()
    return assemble(prof, rows, curves, tss, oracles, sources)


def assemble(prof: StudyProfile, rows, curves, tss, oracles, sources) -> dict[str, pd.DataFrame]:
    """The study's tables from its runs, in a fixed order (k, seed, arm), whatever order they ran in."""
    order = {a: i for i, a in enumerate(prof.arms)}

    def sort(df, keys):
        return df.sort_values(keys, key=lambda s: s.map(order) if s.name == "arch" else s).reset_index(drop=True)

    results = sort(pd.DataFrame(rows), ["k", "seed", "arch"])
    curves_df = sort(pd.concat(curves, ignore_index=True), ["k", "seed", "arch", "epoch"])
    src = pd.DataFrame([{k: v for k, v in s.items()} for s in sources])
    results = results.merge(src[["k", "k_measured", "k_measured_low", "k_measured_high"]], on="k", how="left")
    results = speed_columns(results, curves_df)
    ts = pd.concat(tss, ignore_index=True) if tss else pd.DataFrame(columns=["source", "k", "seed", "layer", "unit", "T_data"])
    oracle = sort(pd.DataFrame(oracles), ["k", "seed", "arch"]) if oracles else pd.DataFrame()
    return {"results": results, "curves": curves_df, "timescales": ts, "oracle": oracle, "sources": src}


def speed_columns(results: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Add ``auc_valid`` (mean validation loss over the epochs every arm of the (k, seed) ran),
    ``common_epochs`` and ``epochs_to_baseline_best`` to ``results``."""
    out = results.copy()
    last = curves.groupby(["k", "seed", "arch"])["epoch"].max()
    common = last.groupby(["k", "seed"]).min().rename("common_epochs")
    c = curves.join(common, on=["k", "seed"])
    auc = c[c["epoch"] <= c["common_epochs"]].groupby(["k", "seed", "arch"])["valid_loss"].mean().rename("auc_valid")
    target = curves[curves["arch"] == "baseline"].groupby(["k", "seed"])["valid_loss"].min().rename("target")
    c = c.join(target, on=["k", "seed"])
    hit = c[c["valid_loss"] <= c["target"] + 1e-12].groupby(["k", "seed", "arch"])["epoch"].min()
    out = out.join(common, on=["k", "seed"]).join(auc, on=["k", "seed", "arch"])
    out = out.join(hit.rename("epochs_to_baseline_best").astype(float), on=["k", "seed", "arch"])
    out["common_epochs"] = out["common_epochs"].fillna(0).astype(int)
    return out
