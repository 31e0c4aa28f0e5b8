"""The whole measurement: I(d) on a grid, the shuffle band, the retained range, the decay-law fits.

The curve is fitted as the **excess over the shuffle mean**, ``I(d) - mean_k I_shuffle_k(d)``: the
shuffles estimate what the estimator reports with no dependence at all (for word-level corpora
that floor is most of the raw value at long range, e.g. ~1.2 bits of Grassberger estimate on PTB
train, against a few thousandths of a bit of real dependence at d ~ 500), so subtracting it
removes the estimator's remaining bias. Its standard error is ``sqrt(se_excess^2 + sd_null^2 / K)``.
With ``se='jackknife'``, ``se_excess`` is a *paired* delete-one-block jackknife of
``I(d) - I_ref(d)``, where ``I_ref`` is the same estimator on a copy of the stream shuffled within
each jackknife block (same blocks): deleting a block changes the estimator's bias (it depends on the
vocabulary of what is left; in Brown a block is a genre) by about the same amount in both, so the
difference isolates the variability of the dependence itself. (The plain jackknife SE of I(d),
column ``se_bits``, is dominated by that bias shift: ~0.05 bits on Brown against a long-range
excess of ~0.02.) With ``se='delta'``, ``se_excess`` is the delta-method SE.

A distance **clears the band** when I(d) exceeds the band edge, the maximum over the K shuffles
(``band='max'``, default) or their 95th percentile (``band='p95'``), **and** the excess is at least
``min_z`` (default 2) standard errors. The second condition matters because serially dependent
text fluctuates more than its shuffles do (the jackknife SE at long range exceeds the spread of
the shuffles several-fold), so the band alone lets noise through. A distance is **retained** for
the fits when it is at least ``fit_min_distance``, clears the band, and comes before the first run
of more than ``max_gap`` (default 1) consecutive grid distances that fail: that run ends the fit
range, because beyond it chance excursions happen independently per distance and would fake a
slowly decaying tail, while a single failure inside a bumpy curve (e.g. line-length periodicity)
should not end it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analysis import Result
from ..errors import OptionError
from ..progress import ProgressLike, advance_only, as_progress
from .estimate import (
    DEFAULT_CHUNK,
    ESTIMATORS,
    block_shuffle,
    estimator_column,
    jackknife_se,
    mi_curve,
    shuffle_null,
)
from .fits import DecayFit, fit_decay_laws, fits_table, suggested_shape, vuong_test
from .options import BANDS, MIDecayOptions, MIDecayParams

__all__ = ["BANDS", "MIDecayResult", "mi_decay", "run_mi_decay", "retained_range", "summarize", "tail_law"]

@dataclass(kw_only=True)
class MIDecayResult(Result):
    """Result of :func:`mi_decay` (and of ``tsprobe mi-decay``, :func:`run_mi_decay`).

    Tables (the file each is saved as): ``curve`` (``mi_curve.csv``): one row per distance with the
    columns of :func:`estimate.mi_curve` plus ``mi_bits`` and ``se_bits`` (the chosen estimator),
    ``null_mean_bits``, ``null_sd_bits``, ``null_p95_bits``, ``null_max_bits``, ``null_min_bits``
    (over the shuffles), ``band_bits`` (the band edge used), ``excess_bits`` (= mi - null mean),
    ``excess_se_bits``, ``clears_band``, ``retained``, and ``fit_<model>_bits`` (the fitted curves).
    ``null`` (``mi_null.csv``): the shuffles, long form (``shuffle``, ``distance``, ``mi_*_bits``...).
    ``fits`` (``mi_fits.csv``): :func:`fits.fits_table`. ``summary``: verdict, k with interval,
    suggested a, etc. Figure ``mi_decay.pdf`` (titled ``title``).
    """

    command = "mi-decay"

    fit_objects: list[DecayFit] = field(repr=False, default_factory=list)
    title: str = ""

    def __post_init__(self) -> None:
        from ..plots.mi import figure_mi_decay

        self.figures = {"mi_decay.pdf": lambda: figure_mi_decay(self.curve, self.fits, title=self.title)}

    @property
    def curve(self) -> pd.DataFrame:
        return self.tables["mi_curve.csv"]

    @property
    def null(self) -> pd.DataFrame:
        return self.tables["mi_null.csv"]

    @property
    def fits(self) -> pd.DataFrame:
        return self.tables["mi_fits.csv"]


def _band(null: pd.DataFrame, col: str, distances: np.ndarray) -> pd.DataFrame:
    if null.empty:
        z = np.full(len(distances), np.nan)
        return pd.DataFrame({"distance": distances, "null_mean_bits": z, "null_sd_bits": z,
                             "null_p95_bits": z, "null_max_bits": z, "null_min_bits": z})
    g = null.groupby("distance")[col]
    out = pd.DataFrame({
        "null_mean_bits": g.mean(), "null_sd_bits": g.std(ddof=1),
        "null_p95_bits": g.quantile(0.95), "null_max_bits": g.max(), "null_min_bits": g.min(),
    }).reset_index()
    return out


def mi_decay(tokens: np.ndarray, *, distances=None, max_distance: int = 1000, n_distances: int = 60,
             estimator: str = "grassberger", n_resamples: int = 10, seed: int = 0, n_types: int | None = None,
             boundaries: np.ndarray | None = None, se: str = "jackknife", n_blocks: int = 20, band: str = "max",
             min_z: float = 2.0, fit_min_distance: int = 1, max_gap: int = 1,
             chunk_size: int = DEFAULT_CHUNK, delta_se: bool = False, progress: ProgressLike = None,
             shuffles: int | None = None) -> MIDecayResult:
    """Measure I(d) of an id stream, its shuffle band, and fit the decay laws (module docstring).

    ``distances``: integers or a text list (``1-10,20``) (default: ~``n_distances`` log-spaced in
    1..``max_distance``). ``estimator``: plugin | miller-madow | grassberger. ``n_resamples``: K
    permutations for the band (seeded by ``seed``; ``shuffles`` is its former name). ``boundaries``:
    segment id per token (pairs never cross segments). ``se``: jackknife (``n_blocks`` blocks) |
    delta; ``delta_se``: also the delta-method SE of the curve beside the jackknife (column
    ``se_delta_bits``). Every option is checked first (:class:`.options.MIDecayParams`).
    ``progress`` (:mod:`timescale_probe.progress`): started once with distances x streams (1 + K
    streams, + 1 block-shuffled reference with the jackknife and K > 0), advanced once per distance
    and stream.
    """
    if shuffles is not None:
        if n_resamples not in (10, shuffles):
            raise OptionError("n_resamples and shuffles (its former name) disagree: give one", param="n_resamples")
        n_resamples = shuffles
    text = distances if isinstance(distances, str) else None
    params = MIDecayParams(max_distance=max_distance, n_distances=n_distances, distances=text, estimator=estimator,
                           n_resamples=n_resamples, seed=seed, band=band, se=se, n_blocks=n_blocks, delta_se=delta_se,
                           min_z=min_z, fit_min_distance=fit_min_distance, max_gap=max_gap)
    est, shuffles = params.estimator, params.n_resamples
    x = np.asarray(tokens)
    if x.ndim != 1 or x.size < 2:
        raise OptionError(f"need a one-dimensional token stream of at least 2 tokens, got shape {x.shape}")
    d = np.asarray(params.grid() if distances is None or text is not None else distances, dtype=np.int64)
    if d.size == 0 or d.min() < 1:
        raise OptionError("distances must be integers >= 1", param="distances")
    if d.max() >= x.size:
        raise OptionError(f"the largest distance ({int(d.max())}) must be below the stream length ({x.size} tokens)")
    V = int(n_types if n_types is not None else int(x.max()) + 1)
    bar = as_progress(progress)
    n_streams = 1 + int(shuffles) + int(se == "jackknife" and shuffles > 0)
    bar.start(int(d.size) * n_streams, f"I(d) of {x.size:,} tokens")
    try:
        curve = mi_curve(x, d, n_types=V, boundaries=boundaries, se=se, n_blocks=n_blocks, chunk_size=chunk_size,
                         delta_se=delta_se, progress=advance_only(bar))
        col = estimator_column(est)
        curve["mi_bits"] = curve[col]
        curve["se_bits"] = curve[col.replace("mi_", "se_")]
        null = shuffle_null(x, d, shuffles, seed=seed, n_types=V, boundaries=boundaries, chunk_size=chunk_size,
                            progress=advance_only(bar))
        loo = curve.attrs.get("loo_bits")
        curve = curve.merge(_band(null, col, d), on="distance", how="left")
        if shuffles > 0:
            curve["band_bits"] = curve["null_max_bits"] if band == "max" else curve["null_p95_bits"]
            curve["excess_bits"] = curve["mi_bits"] - curve["null_mean_bits"]
            sd = curve["null_sd_bits"].fillna(0.0)
            se_excess = curve["se_bits"].to_numpy(float)
            if se == "jackknife" and loo is not None:
                # paired jackknife of the excess against a block-preserving shuffle (module docstring)
                ref_seed = int(np.random.SeedSequence([int(seed), 2**31]).generate_state(1)[0])
                xb = block_shuffle(x, n_blocks, seed=ref_seed)
                ref = mi_curve(xb, d, n_types=V, boundaries=boundaries, se="jackknife", n_blocks=n_blocks,
                               chunk_size=chunk_size, progress=advance_only(bar))
                loo_ref = ref.attrs.get("loo_bits")
                if loo_ref is not None and loo_ref.shape == loo.shape:
                    e = ESTIMATORS.index(est)
                    se_excess = np.array([jackknife_se((loo[i, :, e] - loo_ref[i, :, e])[:, None])[0]
                                          for i in range(len(d))])
            elif se == "jackknife":
                bar.advance(int(d.size))  # the reference stream counted in the total is not needed
            curve["excess_se_bits"] = np.sqrt(se_excess ** 2 + sd ** 2 / shuffles)
        else:
            curve["band_bits"] = 0.0
            curve["excess_bits"] = curve["mi_bits"]
            curve["excess_se_bits"] = curve["se_bits"]
        with np.errstate(invalid="ignore"):
            clears = ((curve["mi_bits"] > curve["band_bits"]).to_numpy(bool)
                      & (curve["excess_bits"] > 0).to_numpy(bool)
                      & (curve["excess_bits"] >= min_z * curve["excess_se_bits"].fillna(np.inf)).to_numpy(bool))
        curve["clears_band"] = clears
        curve["retained"] = retained_range(clears, max_gap) & (curve["distance"] >= fit_min_distance).to_numpy()
        kept = curve[curve["retained"]]
        fit_objs = fit_decay_laws(kept["distance"], kept["excess_bits"], kept["excess_se_bits"])
        table = fits_table(fit_objs)
        for f in fit_objs:
            curve[f"fit_{f.model}_bits"] = f.predict(curve["distance"]) if np.isfinite(f.aicc) else np.nan
        summary = summarize(table, fit_objs, curve)
        summary.update({"estimator": est, "n_resamples": int(shuffles), "seed": int(seed), "band": band, "se": se,
                        "min_z": float(min_z), "fit_min_distance": int(fit_min_distance), "max_gap": int(max_gap),
                        "n_tokens": int(x.size), "n_types": V, "n_distances": int(d.size)})
        return MIDecayResult(options=params, tables={"mi_curve.csv": curve, "mi_null.csv": null, "mi_fits.csv": table},
                             summary=summary, fit_objects=fit_objs, seed=int(seed))
    finally:
        bar.done()


def run_mi_decay(opts: MIDecayOptions, *, progress: ProgressLike = None) -> MIDecayResult:
    """``tsprobe mi-decay``: read the corpus as ``opts`` say (splits, lowercase, Gutenberg frame,
    ``<eos>``, documents), pick the segments pairs stay within, and :func:`mi_decay` it."""
    from .streams import load_token_stream

    stream = load_token_stream(opts.corpus, splits=opts.splits, lowercase=opts.lowercase, documents=opts.documents,
                               strip_gutenberg=not opts.keep_gutenberg)
    if opts.drop_eos:
        stream = stream.without_eos()
    bounds = stream.boundaries(opts.within)
    if opts.within == "none" and stream.doc_ids is not None and opts.splits and len(opts.splits) > 1:
        bounds = stream.doc_ids  # never pair tokens of two different splits
    p = opts.params()
    res = mi_decay(stream.tokens, distances=p.grid(), estimator=p.estimator, n_resamples=p.n_resamples, seed=p.seed,
                   n_types=stream.n_types, boundaries=bounds, se=p.se, n_blocks=p.n_blocks, delta_se=p.delta_se,
                   band=p.band, min_z=p.min_z, fit_min_distance=p.fit_min_distance, max_gap=p.max_gap,
                   progress=progress)
    res.options, res.title, res.inputs = opts, opts.label or stream.source, list(stream.files)
    res.summary.update(source=stream.source, units="bits")
    return res


def retained_range(clears: np.ndarray, max_gap: int = 1) -> np.ndarray:
    """Cleared distances before the first run of more than ``max_gap`` consecutive failures."""
    clears = np.asarray(clears, bool)
    fail = ~clears
    run = np.zeros(fail.size, dtype=np.int64)
    for i in np.flatnonzero(fail):  # loop over the (few) grid distances, not over tokens
        run[i] = run[i - 1] + 1 if i > 0 and fail[i - 1] else 1
    over = np.flatnonzero(run > max(int(max_gap), 0))
    end = over[0] - max(int(max_gap), 0) if over.size else clears.size
    keep = np.zeros(clears.size, bool)
    keep[:end] = True
    return keep & clears


def summarize(table: pd.DataFrame, fit_objs: list[DecayFit], curve: pd.DataFrame) -> dict:
    """Verdict (lowest AICc), tail law, power-law k with its interval, suggested a = k/2.

    ``tail``: see :func:`tail_law`; ``xi``: the decay length (tokens) of an exponential tail (from
    the tail fit, or from the verdict's exponential term), else NaN. ``a = k_tail / 2`` (the exponent of the power law fitted to the
    tail; NaN when the tail is exponential). ``k`` is the power-law exponent fitted on the whole
    retained range, ``k_combined`` that of the combined law's power term.
    """
    finite = table[np.isfinite(table["aicc"])]
    out: dict = {"n_retained": int(curve["retained"].sum()),
                 "max_retained_distance": int(curve.loc[curve["retained"], "distance"].max())
                 if curve["retained"].any() else 0}
    if finite.empty:
        out.update({"verdict": "insufficient", "tail": "insufficient", "k": np.nan, "k_low": np.nan, "k_high": np.nan,
                    "a": np.nan, "a_low": np.nan, "a_high": np.nan, "xi": np.nan})
        return out
    best = finite.loc[finite["aicc"].idxmin()]
    by = {r.model: r for r in table.itertuples()}
    verdict = str(best["model"])
    out.update({
        "verdict": verdict,
        "delta_aicc_exponential": float(by["exponential"].delta_aicc),
        "delta_aicc_power": float(by["power"].delta_aicc),
        "delta_aicc_combined": float(by["combined"].delta_aicc),
        "k": float(by["power"].k), "k_low": float(by["power"].k_low), "k_high": float(by["power"].k_high),
        "k_combined": float(by["combined"].k), "xi_exponential": float(by["exponential"].xi),
        "xi_combined": float(by["combined"].xi),
    })
    objs = {f.model: f for f in fit_objs}
    tail, tail_info = tail_law(curve)
    out.update(tail_info)
    if tail_info["tail_method"] != "upper-half fit":
        tail = verdict
        if verdict == "combined":
            p = objs["combined"].params
            dmax = float(out["max_retained_distance"])
            tail = "power" if p["A"] * dmax ** (-p["k"]) >= p["B"] * np.exp(-dmax / p["xi"]) else "exponential"
    if tail == "exponential":
        out["xi"] = (out["xi_tail"] if tail_info["tail_method"] == "upper-half fit"
                     else float(by["combined" if verdict == "combined" else "exponential"].xi))
    else:
        out["xi"] = float("nan")
    if tail == "power":
        out.update({"a": suggested_shape(out["k_tail"]), "a_low": suggested_shape(out["k_tail_low"]),
                    "a_high": suggested_shape(out["k_tail_high"]), "a_from": "k_tail / 2"})
    else:
        out.update({"a": np.nan, "a_low": np.nan, "a_high": np.nan, "a_from": f"none ({tail} tail)"})
    out["tail"] = tail
    vuong = vuong_test(objs["power"], objs["exponential"])
    out["llr_power_vs_exponential"] = vuong.R
    out["vuong_p_power_vs_exponential"] = vuong.p
    return out


def tail_law(curve: pd.DataFrame, min_span: float = 30.0) -> tuple[str, dict]:
    """Which law the long-range part follows: exponential and power law fitted (as in
    :func:`fits.fit_decay_laws`) to the retained distances in the upper half of the retained range
    on a log scale (``d >= sqrt(d_min d_max)``), compared by AICc.

    The full-range verdict can be swayed by the short-range shape (a Markov chain's I(d) is a sum
    of exponentials, whose curvature a power-law term imitates); the asymptotic law, which is what
    distinguishes a finite-state source from a critical one, is decided on the tail. Returns the
    law (``power``, ``exponential`` or ``insufficient``) and ``tail_method``: ``upper-half fit``,
    or ``full-range verdict`` when the retained range spans less than ``min_span`` (30x: over a
    narrower range a steep power law and an exponential cannot be told apart) or has fewer than 4
    tail points; then :func:`summarize` takes the full-range verdict (for ``combined``, the larger
    component at the longest retained distance). Also ``tail_from_distance``, ``tail_points``, ``tail_delta_aicc`` (loser minus winner), ``k_tail``
    (with ``k_tail_low``/``k_tail_high``) and ``xi_tail`` (with ``xi_tail_low``/``xi_tail_high``).
    """
    kept = curve[curve["retained"]]
    nan = float("nan")
    info = {"tail_method": "full-range verdict", "tail_from_distance": nan, "tail_points": 0,
            "tail_delta_aicc": nan, "k_tail": nan, "k_tail_low": nan, "k_tail_high": nan, "xi_tail": nan,
            "xi_tail_low": nan, "xi_tail_high": nan}
    if kept.empty:
        return "insufficient", info
    d = kept["distance"].to_numpy(float)
    lo = float(np.sqrt(d.min() * d.max()))
    part = kept[kept["distance"] >= lo]
    info["tail_from_distance"] = int(part["distance"].min()) if len(part) else nan
    info["tail_points"] = int(len(part))
    if len(part) < 4 or d.max() / d.min() < min_span:
        return "insufficient", info
    info["tail_method"] = "upper-half fit"
    fits = {f.model: f for f in fit_decay_laws(part["distance"], part["excess_bits"], part["excess_se_bits"])}
    e, p = fits["exponential"], fits["power"]
    info.update({"k_tail": p.params["k"], "k_tail_low": p.intervals["k"][0], "k_tail_high": p.intervals["k"][1],
                 "xi_tail": e.params["xi"], "xi_tail_low": e.intervals["xi"][0], "xi_tail_high": e.intervals["xi"][1],
                 "tail_delta_aicc": abs(e.aicc - p.aicc)})
    return ("power" if p.aicc < e.aicc else "exponential"), info
