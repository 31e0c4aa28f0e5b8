"""The steps of ``tsprobe reproduce``, in order: each a thin composition of library calls, cached by
:func:`timescale_probe.pipeline.run_pipeline` (a finished step is not recomputed).

What each step computes lives by concern: :mod:`.lm_steps` (corpora, models, timescales, Fig. 1,
appendix), :mod:`.effect_steps` (Table 1, WikiText-2, Fig. 3, Fig. 2, MI decay), :mod:`.multiseed`
(the seeds combined, with the pre-specified claims' statistics) and :mod:`.report`. Every step
builds a typed result (a dataclass of :mod:`.results`) and returns it as a JSON-able dict
(:func:`.results.as_results`; stored in ``<out>/.steps/<name>.json``) with ``_files``: the outputs
it wrote, relative to ``out``. A step that cannot run here (missing checkpoint, corpus or reference
data) raises :class:`~timescale_probe.pipeline.StepSkipped` with what is missing and where to put
it; nothing is ever faked.

Further studies (claims the paper does not make) plug in with :func:`register_study`; their rows
appear in the report's *beyond the paper* part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..pipeline import Step
from .common import fingerprint, fit_summary, timescale_summary  # noqa: F401 - part of this module's API
from .config import SHIPPED, ReproduceOptions
from .effect_steps import (  # noqa: F401 - routing_table/routing_tests are part of this module's API
    routing_table,
    routing_tests,
    step_dyck,
    step_fig3,
    step_mi,
    step_table1,
    step_wt2_perplexity,
)
from .lm_steps import (  # noqa: F401 - load_reference_timescales is part of this module's API
    MODELS,
    TIMESCALE_STEPS,
    WINDOW,
    load_reference_timescales,
    make_timescale_step,
    make_train_step,
    step_appendix_mts,
    step_corpora,
    step_fig1,
    step_published_timescales,
)
from .multiseed import step_seeds
from .report import step_report

# ----------------------------------------------------------------------------------------------
# the step list
# ----------------------------------------------------------------------------------------------

#: Steps that only draw or summarise (seconds): always redone so they see every finished input.
CHEAP_STEPS = ("fig1_timescales", "appendix_mts", "seeds", "report")


# ----------------------------------------------------------------------------------------------
# further studies (beyond the paper)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Study:
    """A study the paper does not make, run as a step; its rows form a *beyond the paper* section.

    ``run(ctx, opts)`` (or ``"module:function"``, imported when the step runs) returns a dict with
    ``rows``: a list of ``{"claim", "verdict", "evidence"}`` (optional ``expected``, ``interval``,
    ``note``; ``verdict`` is the row's outcome: ``holds``, ``does not hold``, ``inconclusive``, ``not
    run``), and optionally ``_files`` (outputs relative to ``ctx.out``) and anything else JSON-able.
    ``options(opts)``: the settings it depends on (hashed for the cache; default: seed and profile).
    """

    name: str
    title: str
    section: str
    run: Callable[..., dict[str, Any]] | str
    options: Callable[[ReproduceOptions], dict[str, Any]] | None = None
    needs: tuple[str, ...] = ()

    def callable(self) -> Callable[..., dict[str, Any]]:
        if not isinstance(self.run, str):
            return self.run
        import importlib

        module, _, fn = self.run.partition(":")
        return getattr(importlib.import_module(module), fn)


#: Registered studies, in report order (see :func:`register_study`).
STUDIES: list[Study] = []


def register_study(name: str, title: str, section: str, run: Callable[..., dict[str, Any]] | str, *,
                   options: Callable[[ReproduceOptions], dict[str, Any]] | None = None,
                   needs: tuple[str, ...] = ()) -> Study:
    """Add a *beyond the paper* study to ``tsprobe reproduce`` (a step before the report, and a
    section ``Beyond the paper: <section>`` of it). Registering a name again replaces it. E.g.::

        register_study("theory", "theory test: MTS shape vs a known MI exponent",
                       "theory test on sources of known MI exponent", "timescale_probe.theory:reproduce_step")
    """
    study = Study(name, title, section, run, options, tuple(needs))
    STUDIES[:] = [s for s in STUDIES if s.name != name] + [study]
    return study

#: Which steps each analysis script (``analyses/*.py``) runs.
FIGURES = {
    "fig1_timescales": ("timescales_ptb", "timescales_wt2", "timescales_markov", "published_timescales",
                        "fig1_timescales"),
    "fig2_dyck": ("dyck",),
    "fig3_routing": ("fig3_routing", "seeds"),
    "appendix_mts": ("timescales_mts", "appendix_mts"),
    "table1_perplexity": ("table1_perplexity", "wt2_perplexity", "seeds"),
    "mi_decay": ("mi_decay",),
    "seeds": ("seeds",),
}


def build_steps(opts: ReproduceOptions) -> list[Step]:
    """The pipeline in order. A step's ``options`` (hashed for the cache) hold the profile's
    settings it uses and fingerprints of its external inputs."""
    s = opts.settings
    base = {"seed": opts.seed, "device": str(opts.device)}
    corpus_fp = {"corpus_dir": None if opts.corpus_dir is None else {
        k: fingerprint(opts.corpus_dir / v) for k, v in
        (("wikitext-2", "wikitext-2"), ("brown", "brown/brown.txt"), ("kjv", "kjv/kjv.txt"),
         ("war-and-peace", "war-and-peace/warandpeace.txt"))}}
    ref_fp = {"reference": fingerprint(opts.reference_dir)}

    def bind(fn):
        return lambda ctx: fn(ctx, opts)

    steps = [Step("corpora", "PTB, its Markov resample, other corpora", bind(step_corpora),
                  options=base | corpus_fp | {k: s[k] for k in ("ptb_lines", "markov_order")})]
    for name, (corpus_key, _arch, shipped, stem) in MODELS.items():
        o = base | {"lm_profile": s["lm_profile"], "train_overrides": s["train_overrides"]}
        if opts.profile == "small" and shipped is not None:
            o = {"checkpoint": fingerprint(opts.checkpoints_dir / SHIPPED[shipped])}
        if corpus_key == "wt2":
            o = o | corpus_fp
        title = f"{'reuse' if opts.profile == 'small' and shipped else 'train'} {stem}"
        steps.append(Step(name, title, make_train_step(name, opts), needs=("corpora",), options=o))
    for name, (train_step, _corpus_key, label) in TIMESCALE_STEPS.items():
        steps.append(Step(name, f"T_data of {label}", make_timescale_step(name, opts), needs=(train_step,),
                          options=base | {"fit_boot": s["fit_boot"], "window": WINDOW}))
    steps += [
        Step("published_timescales", "statistics and fits of the published timescales", bind(step_published_timescales),
             options=base | ref_fp | {"ref_fit_boot": s["ref_fit_boot"]}),
        Step("fig1_timescales", "Fig. 1: timescale distributions", bind(step_fig1), needs=("timescales_ptb",),
             options=base | ref_fp),
        Step("appendix_mts", "Appendix: MTS estimated vs assigned", bind(step_appendix_mts), needs=("timescales_mts",),
             options=base | ref_fp),
        Step("table1_perplexity", "Table 1: perplexity per bin, paired bootstrap", bind(step_table1),
             needs=("train_ptb_baseline", "train_ptb_mts"), options=base | {"n_resamples": s["n_resamples"]}),
        Step("wt2_perplexity", "Table 1: WikiText-2 perplexity", bind(step_wt2_perplexity),
             needs=("train_wt2_mts",), after=("train_wt2_baseline",), options=base),
        Step("fig3_routing", "Fig. 3: routing by unit ablation", bind(step_fig3), needs=("train_ptb_mts",),
             options=base | ref_fp | {k: s[k] for k in ("ablation_groups", "n_resamples", "group_batch")}),
        Step("dyck", "Fig. 2: Dyck-2 accuracy vs timescale", bind(step_dyck),
             options=base | ({"results": fingerprint(opts.dyck_results)} if opts.profile == "small" else
                             {k: s[k] for k in ("dyck_sizes", "dyck_max_len", "dyck_profile", "dyck_seeds")})),
        Step("mi_decay", "MI decay of the corpora", bind(step_mi), needs=("corpora",),
             options=base | corpus_fp | {k: s[k] for k in ("mi_max_distance", "mi_distances", "mi_shuffles",
                                                            "mi_max_tokens")}),
    ]
    steps.append(Step("seeds", "seeds combined, paired by seed: Table 1, Fig. 3, Markov control, validation gap",
                      bind(step_seeds), options=base | {"seeds_dir": fingerprint(opts.seeds_dir),
                                                        "n_resamples": s["n_resamples"]}))
    studies = list(STUDIES)
    for st in studies:
        o = base | {"profile": opts.profile} | (st.options(opts) if st.options else {})
        steps.append(Step(st.name, st.title, (lambda ctx, st=st: st.callable()(ctx, opts)), needs=st.needs, options=o))
    names = [x.name for x in steps]
    steps.append(Step("report", "report.md / report.html",
                      lambda ctx: step_report(ctx, opts, names, studies), options=base))
    return steps


# registered studies (beyond the paper): one register_study(...) line each
register_study("theory", "theory test: MTS shape vs a known MI exponent", "theory test on sources of known MI exponent",
               "timescale_probe.theory:reproduce_step",
               options=lambda o: {"profile": "smoke" if o.profile == "smoke" else "small"})
