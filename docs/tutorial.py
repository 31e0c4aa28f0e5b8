# %% [markdown]
# # Tutorial: a checkpoint's memory timescales, from biases to routing
#
# This tutorial takes one trained language model through the questions of Mahto et al. (ICLR
# 2021): what timescales do its units have, which distribution do they follow, do the timescales
# read from the forget biases match what the units do on real text, and which units does the
# model need for which words? It uses the multi-timescale (MTS) PTB model that ships with tsprobe
# (a 3-layer AWD-LSTM, 300/300/200 units, trained 10 epochs on a CPU) and small token budgets, so
# it runs in well under a minute; a real study uses the whole test split (drop `[:N_TOKENS + 1]`).
#
# Everything is done twice: from Python, and as the `tsprobe` command lines that write the same
# tables. This page is generated: `python scripts/render_tutorial.py` runs
# [tutorial.py](tutorial.py) and writes the code with its printed output here
# (`tests/test_readme.py` runs it too, and checks this page shows the current code).

# %%
from pathlib import Path

import torch
from scipy.stats import spearmanr

import timescale_probe as tsp
from timescale_probe.locations import shipped_checkpoints_dir

torch.set_num_threads(1)     # one thread: the same numbers on every run of this machine
N_TOKENS = 5000              # test tokens scored below (the PTB test split has 82,430)
CKPT = shipped_checkpoints_dir() / "ptb-mts-small.pt"   # in the checkout, or the installed wheel
print(CKPT.name)

# %% [markdown]
# ## 1. Timescales from the forget biases
#
# A unit whose forget gate sits at f = sigmoid(b) keeps a fraction f of its cell state per step,
# so its memory decays like exp(-t/T) with T = -1/log f (the paper's convention). `load_checkpoint`
# reads any supported format into one framework-free stack; `timescales_table` applies the formula
# to every unit's effective forget bias (`bias_ih + bias_hh`).

# %%
stack = tsp.load_checkpoint(CKPT)
print(stack)
table = stack.timescales_table()
summary = table.groupby("layer")["T_bias"].agg(["count", "median", "max"])
summary["share_T>10"] = table.groupby("layer")["T_bias"].apply(lambda t: float((t > 10).mean()))
print(summary.round(3))

# %% [markdown]
# In this MTS model the timescales were imposed, as in the paper: layer 1 has half its units at
# T = 3 and half at T = 4, layer 2 has inverse-gamma quantiles of shape 0.56 and scale 1 (the
# `paper-lm` spec), layer 3 is free.
#
# ## 2. Which distribution?
#
# `fit_timescales` fits each family by maximum likelihood (location fixed at 0), ranks them by AIC
# and compares each with inverse gamma by Vuong's likelihood-ratio test. `n_boot` bootstrap
# replicates give the KS p-values and the intervals (a study uses 1000). On layer 2 the fit should
# give back the imposed shape, 0.56.

# %%
T2 = table.query("layer == 2")["T_bias"].to_numpy()
report = tsp.fit_timescales(T2, ["invgamma", "gamma", "lognorm", "invweibull"], n_boot=50, seed=0)
print(report.fits_[["family", "shape", "shape_lo", "shape_hi", "scale", "aic", "ks_p"]].round(3).to_string(index=False))
print("best by AIC:", report.best("pooled"))

# %% [markdown]
# The inverse-gamma shape comes back: its interval contains 0.56. Yet the best family by AIC is
# Fréchet (`invweibull`), not inverse gamma, although inverse gamma generated these timescales:
# 300 deterministic quantiles are not a random sample, and the two families' tails differ little
# over this range. "Inverse gamma fits" and "inverse gamma fits best" are different claims; the
# authors' own arrays tell the same story ([analyses.md](analyses.md)).
#
# ## 3. Timescales from data
#
# The bias sets the forget gate only when the input and recurrent drive are zero. On real text the
# gate moves, so `estimate_timescales` runs the model over the test split (batch 1, 70-step windows,
# hidden state carried, as the paper) and takes T_data = -1/log(mean forget gate) per unit; its
# table joins the bias table on `layer, unit`.

# %%
corpus = tsp.load_corpus("ptb")
stack, model, corpus = tsp.load_language_model(CKPT, corpus)
tokens = corpus.tokens("test")[: N_TOKENS + 1]
est = tsp.estimate_timescales(model, tokens)
both = est.table_.merge(table, on=["layer", "unit"])[["layer", "unit", "T_bias", "T_data"]]
for layer, rows in both.groupby("layer"):
    rho = spearmanr(rows["T_bias"], rows["T_data"]).statistic
    print(f"layer {layer}: Spearman(T_bias, T_data) = {rho:.3f}, median T_data = {rows['T_data'].median():.2f}")

# %% [markdown]
# Layer 2 keeps the order its biases give (Spearman near 1), at shorter timescales than the biases
# alone: the input drive pulls the gates away from their resting value. Layer 1's biases take only
# two values (T = 3 and 4), so its rank correlation is limited, and on text its units forget much
# faster than T_bias says (median T_data below 1 step against 3.5). T_bias describes a unit at rest;
# T_data describes it at work.
#
# ## 4. Which units matter for which words?
#
# The paper's routing test (its Fig. 3): silence groups of layer-2 units ordered by timescale
# (longest first) and measure how much the perplexity rises per word-frequency bin. Each ratio
# (ablated / intact perplexity) comes with a paired bootstrap interval over 100-token chunks; here
# 4 quantile groups and 200 resamples keep it quick (the paper's setting: `chunks:50`, 10,000).

# %%
bin_of, labels = corpus.bins("train", (100, 1000, 10000))
study = tsp.run_ablation_study(model, tokens, T2, layer=2, groups="quantiles:4",
                               binnings=[("freq", bin_of, labels)], n_resamples=200, seed=0)
ratios = study.ratios_.query("kind == 'group'")
print(ratios.pivot(index="group", columns="bin", values="ratio")[list(labels) + ["all"]].round(3))

# %% [markdown]
# Ablating either of the two longest-timescale groups (1, 2) lowers the perplexity of the most
# frequent words slightly and raises it for the rarer ones; the group with the shortest timescales
# (4) costs the most in every bin. With 5,000 tokens the intervals
# (`ratio_lo`, `ratio_hi` in `study.ratios_`) are wide; the paper's claim is about the whole test
# split and its random-group controls (`controls=20`).
#
# ## 5. A figure
#
# Both results in one figure: T_data against T_bias for every unit (log scales; the diagonal is
# agreement), and the routing ratios per group and frequency bin.

# %%
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for layer, rows in both.groupby("layer"):
    ok = (rows["T_bias"] > 0) & (rows["T_data"] > 0)
    left.scatter(rows.loc[ok, "T_bias"], rows.loc[ok, "T_data"], s=6, alpha=0.6, label=f"layer {layer}")
left.set(xscale="log", yscale="log", xlabel="T_bias (steps)", ylabel="T_data (steps)", title="timescales")
lims = [0.05, 2e3]
left.plot(lims, lims, color="grey", lw=0.8)
left.legend()
for label in labels:
    rows = ratios[ratios["bin"] == label]
    right.plot(rows["group"], rows["ratio"], marker="o", label=label)
right.axhline(1, color="grey", lw=0.8)
right.set(xlabel="layer-2 group (longest timescales first)", ylabel="perplexity ratio", title="ablation")
right.legend(title="word frequency")
fig.tight_layout()
Path("tutorial-out").mkdir(exist_ok=True)
fig.savefig("tutorial-out/timescales_and_routing.png", dpi=90)

# %% [markdown]
# ## 6. The same from the command line
#
# Each step is one command that writes its tables, figures and a `run.json` (options, seed,
# versions, input hashes) into `--out`. Here `tsprobe` runs as `python -m timescale_probe`, the same
# entry point.

# %%
import subprocess  # noqa: E402
import sys  # noqa: E402


def tsprobe(*args: str) -> None:
    """Run one tsprobe command line and show its output, as a shell would."""
    print("$ tsprobe " + " ".join(args).replace(f"{CKPT.parent}/", ""))   # shown without the folder
    run = subprocess.run([sys.executable, "-m", "timescale_probe", *args], capture_output=True, text=True,
                         env={**__import__("os").environ, "COLUMNS": "100", "OMP_NUM_THREADS": "1"})
    print(run.stdout.rstrip() or run.stderr.rstrip())


tsprobe("timescales", str(CKPT), "--out", "tutorial-out/timescales")
tsprobe("fit-distribution", "tutorial-out/timescales/timescales.csv", "--layers", "2", "--families",
        "invgamma,gamma,lognorm,invweibull", "--bootstrap", "50", "--figures", "none", "--out", "tutorial-out/fit")

# %% [markdown]
# The other steps, with the budgets used above (not run here; each prints a table like the ones
# above and writes its CSVs and PDFs):
#
# ```bash
# tsprobe estimate-timescales ptb-mts-small.pt --corpus ptb --max-tokens 5001 --out tutorial-out/data
# tsprobe ablate ptb-mts-small.pt --corpus ptb --layer 2 --groups quantiles:4 --bootstrap 200 \
#     --max-tokens 5001 --out tutorial-out/ablate
# tsprobe fit-distribution tutorial-out/data/timescales.csv --column T_data --out tutorial-out/fit-data
# ```
#
# Next: [python.md](python.md) for the library, [analyses.md](analyses.md) for what each
# analysis computes, [reproduce.md](reproduce.md) for the paper's whole pipeline.
