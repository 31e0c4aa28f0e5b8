"""Unit groups, the two ablation semantics, bootstrap ratios, Brown tags and the reference Fig. 3 data."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import one_thread_fixture  # noqa: F401  (small models run on one torch thread)

from timescale_probe.ablation import (
    MODES,
    POS_LABELS,
    UnitGroup,
    ablated_nll,
    bootstrap_chunk_counts,
    brown_tag_class,
    control_groups,
    load_reference_ablation,
    make_groups,
    normalize_brown_tag,
    pos_classes_for_vocab,
    pos_lexicon,
    ratio_table,
    read_brown_tagged,
    read_tagged_sentences,
    reference_chunk_timescales,
    run_ablation_study,
    timescale_order,
)
from timescale_probe.errors import InputError, OptionError
from timescale_probe.evaluation import token_nll
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.plots.ablation import plot_routing
from timescale_probe.runner import collect, mask_output, run_stream, silence

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=40, emb_size=6, layer_sizes=(10, 12, 6))).eval()
    with torch.no_grad():  # stronger recurrence so that silence and output ablations differ clearly
        for r in m.rnns:
            r.weight_hh_l0.mul_(6.0)
    return m


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 40, (301,), generator=torch.Generator().manual_seed(1))


# -- groups -------------------------------------------------------------------------------------

def test_chunks_follow_timescale_order_longest_first():
    T = np.array([1.0, 50.0, 3.0, 50.0, 0.0, 9.0, np.inf])
    assert timescale_order(T).tolist() == [6, 1, 3, 5, 2, 0, 4]
    g = make_groups("chunks:3", T, layer=2)
    assert [x.units.tolist() for x in g] == [[6, 1, 3], [5, 2, 0], [4]]
    assert g[0].name == "1" and g[0].layer == 2
    q = make_groups("quantiles:2", T, layer=2)
    assert [x.units.tolist() for x in q] == [[6, 1, 3, 5], [2, 0, 4]]
    e = make_groups("edges:2,10", T, layer=2)
    assert [x.units.tolist() for x in e] == [[6, 1, 3], [5, 2], [0, 4]]
    s = e[0].summary()
    assert s["T_max"] == np.inf and s["T_mean"] == 50.0 and s["T_min"] == 50.0


def test_paper_chunks_of_layer_two():
    groups = reference_chunk_timescales()
    assert len(groups) == 23 and (groups["size"] == 50).all()
    # chunk 3 holds T about 94 at its top (paper Fig. 3; docs/methods.md §5), chunk 1 the 359,932-step unit
    assert groups.T_max.iloc[0] == pytest.approx(359932, rel=1e-4)
    assert groups.T_max.iloc[2] == pytest.approx(94, rel=0.02)


def test_unit_lists_inline_and_file(tmp_path):
    T = np.arange(20, dtype=float)
    assert make_groups("units:1,5,9", T, 1)[0].units.tolist() == [1, 5, 9]
    assert make_groups("units:3-5,7", T, 1)[0].units.tolist() == [3, 4, 5, 7]
    f = tmp_path / "units.txt"
    f.write_text("# my groups\n0 1 2\n\n10,11  # tail\n")
    g = make_groups(f"units:{f}", T, 1)
    assert [x.units.tolist() for x in g] == [[0, 1, 2], [10, 11]]
    for bad in ("units:1,99", "units:1,1", "units:nofile.txt", "chunks:0", "quantiles:x", "edges:", "zap:3"):
        with pytest.raises(OptionError):
            make_groups(bad, T, 1)


def test_controls_are_seeded_and_same_size():
    T = np.arange(30, dtype=float)
    a = control_groups(30, 5, 4, T, 2, seed=7)
    b = control_groups(30, 5, 4, T, 2, seed=7)
    assert [x.units.tolist() for x in a] == [x.units.tolist() for x in b]
    assert all(x.size == 5 and len(set(x.units)) == 5 and x.kind == "control" for x in a)
    assert [x.units.tolist() for x in control_groups(30, 5, 4, T, 2, seed=8)] != [x.units.tolist() for x in a]


# -- semantics ----------------------------------------------------------------------------------

def surgery_nll(model, tokens, layer, units, mode):
    """Reference by weight surgery on a copy, one plain pass: ``output`` zeroes the units' columns
    where their outputs are read next (next layer's W_ih, or the decoder, untied); ``silence``
    (Lakretz et al.) also zeroes their columns of their own layer's W_hh."""
    import copy

    surg = copy.deepcopy(model)
    units = torch.as_tensor(units)
    with torch.no_grad():
        if layer < len(surg.rnns):
            surg.rnns[layer].weight_ih_l0[:, units] = 0
        else:
            surg.decoder.weight = torch.nn.Parameter(surg.decoder.weight.detach().clone())
            surg.decoder.weight[:, units] = 0
        if mode == "silence":
            surg.rnns[layer - 1].weight_hh_l0[:, units] = 0
    return token_nll(surg, tokens)[0]


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_output_ablation_batched_equals_weight_surgery(model, tokens, layer):
    H = model.layer_sizes[layer - 1]
    groups = make_groups("chunks:4", np.linspace(20, 1, H), layer)
    intact, abl = ablated_nll(model, tokens, groups, mode="output", group_batch=2)
    np.testing.assert_array_equal(intact, token_nll(model, tokens)[0])  # the intact copy: the plain pass, bit for bit
    for j, g in enumerate(groups):
        one = token_nll(model, tokens, hooks=[mask_output(layer, torch.ones(H).index_fill_(0, torch.as_tensor(g.units), 0))])[0]
        np.testing.assert_allclose(abl[j], one, atol=1e-6)
        np.testing.assert_allclose(abl[j], surgery_nll(model, tokens, layer, g.units, "output"), atol=1e-5)
        assert not np.allclose(abl[j], intact)


def test_a_stopped_ablation_resumes_after_its_finished_passes(model, tokens, tmp_path, monkeypatch):
    """Passes finished before a stop are read back, not rerun; the numbers equal an uninterrupted
    run bit for bit; the folder goes once the run completes; other inputs do not reuse them."""
    import timescale_probe.ablation.passes as passes

    groups = make_groups("chunks:3", np.linspace(20, 1, 12), 2)  # 4 groups + intact = 5 copies, 3 passes of 2
    ref = ablated_nll(model, tokens, groups, group_batch=2)
    real, calls = passes.run_stream, []

    def stop_after_two(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(passes, "run_stream", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        ablated_nll(model, tokens, groups, group_batch=2, resume_dir=tmp_path)
    (store,) = tmp_path.iterdir()
    assert sorted(p.name for p in store.iterdir()) == ["pass-00000.npy", "pass-00001.npy"]
    calls.clear()
    stats: dict[str, int] = {}
    got = ablated_nll(model, tokens, groups, group_batch=2, resume_dir=tmp_path, stats=stats)
    assert len(calls) == 1  # only the third pass ran again
    assert stats == {"passes": 3, "passes_resumed": 2}
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert list(tmp_path.iterdir()) == []
    fp = passes.pass_fingerprint
    batches = [[[g] for g in groups]]
    assert fp(model, tokens, batches, mode="output", bptt=70, device="cpu") != \
        fp(model, tokens[:-1], batches, mode="output", bptt=70, device="cpu")
    assert fp(model, tokens, batches, mode="output", bptt=70, device="cpu") != \
        fp(model, tokens, batches, mode="silence", bptt=70, device="cpu")
    assert fp(model, tokens, batches, mode="output", bptt=70, device="cpu") != \
        fp(model, tokens, [[[g] for g in groups[::-1]]], mode="output", bptt=70, device="cpu")


def test_intact_nll_matches_a_direct_forward(model, tokens):
    with torch.no_grad():
        logits, _, _ = model(tokens[:-1].unsqueeze(1), model.init_hidden(1))
    nll = torch.nn.functional.cross_entropy(logits[:, 0], tokens[1:], reduction="none").numpy()
    intact, _ = ablated_nll(model, tokens, make_groups("chunks:6", np.arange(12.0), 2), mode="silence", bptt=301)
    np.testing.assert_allclose(intact, nll, atol=1e-5)


def test_intact_nll_matches_evaluation_token_nll(model, tokens):
    nll, targets = token_nll(model, tokens, batch_size=1, bptt=70)
    intact, _ = ablated_nll(model, tokens, make_groups("chunks:6", np.arange(12.0), 2), mode="output")
    np.testing.assert_array_equal(targets, tokens[1:].numpy())
    np.testing.assert_allclose(intact, nll, atol=1e-5)


def test_silence_zeroes_h_and_o_in_its_copy_only(model, tokens):
    units = np.array([0, 3, 7])
    gates, hidden = collect("gates", 2, "ifgo"), collect("hidden", 2)
    run_stream(model, tokens[:50], [silence(2, [None, units], 12), gates, hidden], copies=2)
    h, o = hidden.stacked(), gates.stacked()["o"]
    assert h.shape == (49, 2, 12)
    assert torch.all(h[:, 1, units] == 0) and torch.all(o[:, 1, units] == 0)
    assert torch.all(h[:, 0, units] != 0)  # the intact copy


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_batched_silence_matches_weight_surgery_in_every_layer(model, tokens, layer):
    groups = make_groups("quantiles:3", np.arange(model.layer_sizes[layer - 1], dtype=float), layer)
    i1, a1 = ablated_nll(model, tokens, groups, mode="silence", group_batch=3)
    i2, a2 = ablated_nll(model, tokens, groups, mode="silence", group_batch=1)
    np.testing.assert_allclose(a1, a2, atol=1e-6)
    np.testing.assert_allclose(i1, i2, atol=1e-6)
    for j, g in enumerate(groups):
        np.testing.assert_allclose(a1[j], surgery_nll(model, tokens, layer, g.units, "silence"), atol=1e-5)


def test_silence_and_output_differ_through_the_recurrence(model, tokens):
    g = [UnitGroup("a", 2, np.array([2, 5, 11]), np.ones(3))]
    _, sil = ablated_nll(model, tokens, g, mode="silence")
    _, out = ablated_nll(model, tokens, g, mode="output")
    assert np.abs(out[0] - sil[0]).max() > 1e-3
    with pytest.raises(OptionError):
        ablated_nll(model, tokens, g, mode="zap")


def test_groups_in_several_layers_run_as_hooks_per_layer(model, tokens):
    """Copies ablating groups of different layers in one pass equal one pass per group."""
    groups = [UnitGroup("a", 1, np.array([1, 4]), np.ones(2)), UnitGroup("b", 3, np.array([0, 5]), np.ones(2))]
    for mode in MODES:
        _, both = ablated_nll(model, tokens, groups, mode=mode, group_batch=3)
        for j, g in enumerate(groups):
            np.testing.assert_allclose(both[j], surgery_nll(model, tokens, g.layer, g.units, mode), atol=1e-5)


# -- ratios and bootstrap -----------------------------------------------------------------------

def test_ratio_table_numbers():
    rng = np.random.default_rng(0)
    n = 1000
    intact = rng.gamma(2.0, 1.5, n)
    ablated = np.stack([intact + 0.1, intact - 0.05 * (np.arange(n) % 2)])
    targets = rng.integers(0, 10, n)
    cat = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, -1])  # id 9 has no bin
    groups = [UnitGroup("1", 2, np.arange(2), np.ones(2)), UnitGroup("2", 2, np.arange(2), np.ones(2))]
    df = ratio_table(intact, ablated, targets, cat, ["a", "b", "c"], groups, n_resamples=500, seed=3)
    r = df.set_index(["group", "bin"])
    assert r.loc[("1", "a"), "ratio"] == pytest.approx(math.exp(0.1), rel=1e-12)
    assert r.loc[("1", "a"), "ratio_lo"] == pytest.approx(math.exp(0.1), rel=1e-12)
    m = cat[targets] == 1
    expected = math.exp(ablated[1][m].mean()) / math.exp(intact[m].mean())
    assert r.loc[("2", "b"), "ratio"] == pytest.approx(expected, rel=1e-12)
    assert r.loc[("2", "b"), "ppl_ablated"] / r.loc[("2", "b"), "ppl_intact"] == pytest.approx(expected, rel=1e-12)
    assert r.loc[("2", "all"), "n_tokens"] == n and r.loc[("2", "a"), "n_tokens"] == int((cat[targets] == 0).sum())
    assert r.loc[("2", "b"), "ratio_lo"] < expected < r.loc[("2", "b"), "ratio_hi"]
    again = ratio_table(intact, ablated, targets, cat, ["a", "b", "c"], groups, n_resamples=500, seed=3)
    pd.testing.assert_frame_equal(df, again)


def test_bootstrap_counts():
    c = bootstrap_chunk_counts(1050, chunk=100, n_resamples=50, seed=0)
    assert c.shape == (51, 10)
    assert (c[0] == 1).all() and (c.sum(1) == 10).all()
    assert not np.array_equal(c, bootstrap_chunk_counts(1050, chunk=100, n_resamples=50, seed=1))
    with pytest.raises(OptionError):
        bootstrap_chunk_counts(150, chunk=100)


def test_study_routing_and_controls(model, tokens):
    T = np.linspace(20, 1, 12)
    bins = ("frequency", np.arange(40) % 3, ["hi", "mid", "lo"])
    st = run_ablation_study(model, tokens, T, layer=2, groups="chunks:3", binnings=[bins], controls=4,
                            n_resamples=200, seed=0, group_batch=3)
    assert len(st.groups_) == 8 and st.options["control_size"] == 3
    assert set(st.controls_.bin) == {"hi", "mid", "lo", "all"} and (st.controls_.n_controls == 4).all()
    top = st.routing_[st.routing_["rank"] == 1].set_index("bin")
    main = st.ratios_[st.ratios_.kind == "group"]
    for b in ("hi", "mid", "lo"):
        assert top.loc[b, "ratio"] == pytest.approx(main[main.bin == b].ratio.max())
    fig = plot_routing(st.ratios_, st.groups_, st.controls_)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "18.3"  # the group's mean T, one line (readable); its range is in groups_


# -- parts of speech (Brown) --------------------------------------------------------------------

SAMPLE = """

\tThe/at jury/nn said/vbd it/pps did/dod not/* find/vb any/dti evidence/nn ./.


\tI'll/ppss+md see/vb Atlanta's/np$ Mayor-nominate/nn-tl in/in-hl Paris/np ,/, voila/fw-uh !/.
"""


def test_tag_reader_and_classes_on_sample():
    sents = read_tagged_sentences(SAMPLE)
    assert len(sents) == 2 and sents[0][0] == ("The", "at") and sents[1][0] == ("I'll", "ppss+md")
    assert normalize_brown_tag("nn-tl") == "nn" and normalize_brown_tag("ppss+md") == "ppss"
    assert normalize_brown_tag("in-hl") == "in" and normalize_brown_tag("fw-uh") == "fw"
    classes = [brown_tag_class(t) for _, t in sents[0]]
    assert classes == ["function", "content", "content", "function", "function", "function", "content",
                       "function", "content", "other"]
    assert [brown_tag_class(t) for _, t in sents[1]] == ["function", "content", "content", "content", "function",
                                                          "content", "other", "other", "other"]
    lex = pos_lexicon(sents)
    cls, labels, stats = pos_classes_for_vocab(["the", "jury", "<eos>", "N", "zebra", "not"], lex)
    assert labels == list(POS_LABELS)
    assert [labels[c] for c in cls] == ["function", "content", "other", "other", "content", "function"]
    assert stats["unseen"] == 1
    with pytest.raises(InputError):
        read_tagged_sentences("a/at b\n")


def test_brown_shared_files(corpora_dir):
    sents = read_brown_tagged(corpora_dir / "brown" / "tagged")
    assert len(sents) == 57340 and sum(len(s) for s in sents) == 1161192  # NLTK's counts
    lex = pos_lexicon(sents)
    for w, c in {"the": "function", "of": "function", "and": "function", "would": "function",
                 "government": "content", "said": "content", "quickly": "content", ",": "other"}.items():
        assert lex[w] == c, w
    counts = pd.Series([brown_tag_class(t) for s in sents for _, t in s]).value_counts()
    assert counts["function"] == 495890 and counts["content"] == 515725 and counts["other"] == 149577


# -- reference Fig. 3 data ----------------------------------------------------------------------

def test_reference_fig3_data(reference_results, tmp_path):
    ref = load_reference_ablation(reference_results / "unit_ablation")
    assert len(ref) == 4 * 23
    rare = ref[ref.bin == "<100"].reset_index(drop=True)
    assert rare.ratio.max() == pytest.approx(1.058, abs=5e-4)
    assert rare.group[rare.ratio.idxmax()] == "3"
    assert ref[ref.bin == ">10K"].ratio.max() <= 1.0
    from timescale_probe.fileio import save_figure

    fig = plot_routing(ref, reference_chunk_timescales(), title="reference")
    save_figure(fig, tmp_path / "fig3.pdf")
    assert (tmp_path / "fig3.pdf").stat().st_size > 1000
    with pytest.raises(InputError):
        load_reference_ablation(tmp_path)
