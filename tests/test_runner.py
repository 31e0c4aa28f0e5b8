"""The one stream runner: parity with the plain forward (bit for bit) and with a step-by-step LSTM
cell (float tolerance), the hook points, copies and their interventions, and its errors."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import one_thread_fixture  # noqa: F401  (small models run on one torch thread)

from timescale_probe.errors import OptionError
from timescale_probe.models import LanguageModel, LMConfig
from timescale_probe.runner import (
    Hook,
    collect,
    gate_bias,
    mask_output,
    run_stream,
    silence,
)

pytestmark = pytest.mark.usefixtures("one_thread")

V = 29


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = LanguageModel(LMConfig(vocab_size=V, emb_size=5, layer_sizes=(9, 11, 5))).eval()
    with torch.no_grad():  # trained-like: stronger recurrence, spread forget biases
        for r in m.rnns:
            H = r.hidden_size
            r.weight_hh_l0.mul_(4.0)
            r.bias_hh_l0[H:2 * H].normal_(1.0, 2.0)
    return m


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, V, (163,), generator=torch.Generator().manual_seed(3))


@torch.no_grad()
def plain_nll(model, tokens, batch_size, window):
    """The plain way: model.forward window by window, hidden state carried, (steps, batch) NLL."""
    n = tokens.numel() // batch_size
    data = tokens[: n * batch_size].view(batch_size, n).t()
    hidden, out = model.init_hidden(batch_size), []
    for a in range(0, n - 1, window):
        x, y = data[a:min(a + window, n - 1)], data[a + 1:min(a + window, n - 1) + 1]
        logits, hidden, _ = model(x, hidden)
        out.append(F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="none").view(x.shape).double())
    return torch.cat(out)


@torch.no_grad()
def step_by_step(model, tokens, batch_size=1, o_offsets=None):
    """Reference: every layer as a plain LSTM cell, one time step at a time, in float64.
    ``o_offsets[k]``: added to layer k's output-gate pre-activation (copies along the batch)."""
    n = tokens.numel() // batch_size
    x_all = model.encoder(tokens[: n * batch_size].view(batch_size, n).t()[:-1]).double()
    ref = []
    for k, r in enumerate(model.rnns):
        H = r.hidden_size
        w_ih, w_hh = r.weight_ih_l0.double(), r.weight_hh_l0.double()
        b = (r.bias_ih_l0 + r.bias_hh_l0).double()
        if o_offsets is not None and k in o_offsets:
            x_all = x_all.expand(-1, o_offsets[k].shape[0], -1) if x_all.shape[1] == 1 else x_all
        B = x_all.shape[1]
        h, c = torch.zeros(B, H, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64)
        per = {g: [] for g in "ifgoch"}
        for t in range(x_all.shape[0]):
            z = x_all[t] @ w_ih.T + h @ w_hh.T + b
            if o_offsets is not None and k in o_offsets:
                z[:, 3 * H:] += o_offsets[k].double()
            i, f, g, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, v in zip("ifgoch", (i, f, g, o, c, h)):
                per[name].append(v)
        ref.append({name: torch.stack(v) for name, v in per.items()})
        x_all = ref[-1]["h"]
    return ref


# -- exactness -----------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size,window", [(1, 163), (1, 20), (3, 7)])
def test_no_hooks_equals_the_plain_forward_bit_for_bit(model, tokens, batch_size, window):
    run = run_stream(model, tokens, batch_size=batch_size, window=window, nll=True)
    ref = plain_nll(model, tokens, batch_size, window)
    assert run.nll.shape == ref.shape and run.nll.dtype == torch.float64
    assert torch.equal(run.nll, ref)
    assert torch.equal(run.targets, tokens[: run.targets.numel() + batch_size].view(batch_size, -1).t()[1:])


def test_read_hooks_change_nothing(model, tokens):
    hooks = [collect("gates", k, "all") for k in (1, 2, 3)] + [collect("cell", 2), collect("hidden", 3),
                                                                 collect("output", 1), collect("input"),
                                                                 collect("logits")]
    run = run_stream(model, tokens, hooks, window=20, nll=True)
    assert torch.equal(run.nll, plain_nll(model, tokens, 1, 20))
    logits = hooks[-1].stacked()
    assert logits.shape == (162, 1, V)
    np.testing.assert_allclose(F.cross_entropy(logits[:, 0], tokens[1:], reduction="none").double(), run.nll[:, 0])


@pytest.mark.parametrize("batch_size,window,block_tokens", [(1, 162, None), (2, 9, None), (2, 9, 40)])
def test_gates_cells_and_outputs_equal_a_step_by_step_cell(model, tokens, batch_size, window, block_tokens):
    hooks = [(collect("gates", k, "ifgo"), collect("cell", k), collect("hidden", k)) for k in (1, 2, 3)]
    run_stream(model, tokens, [h for trio in hooks for h in trio], batch_size=batch_size, window=window,
               block_tokens=block_tokens)
    ref = step_by_step(model, tokens, batch_size)
    for k, (g, c, h) in enumerate(hooks):
        got = dict(g.stacked(), c=c.stacked(), h=h.stacked())
        for name in "ifgoch":
            np.testing.assert_allclose(got[name].double(), ref[k][name], atol=1e-5, rtol=1e-5,
                                       err_msg=f"layer {k + 1} {name}")
        np.testing.assert_allclose(got["f_comp"].double(), 1 - ref[k]["f"], atol=1e-5)


def test_silence_hook_equals_a_cell_with_its_output_gate_offset(model, tokens):
    """Per-copy gate offsets run inside the fused kernel: the gates seen and the outputs equal a
    step-by-step cell whose output-gate pre-activations carry the same offsets."""
    units = [None, [0, 4, 10], [7]]
    hooks = [collect("gates", 2, "o"), collect("hidden", 2), collect("hidden", 3)]
    run_stream(model, tokens, [silence(2, units, 11)] + hooks, copies=3, window=50)
    off = torch.zeros(3, 11)
    off[1, [0, 4, 10]] = -1e4
    off[2, 7] = -1e4
    ref = step_by_step(model, tokens, 1, o_offsets={1: off})
    np.testing.assert_allclose(hooks[0].stacked()["o"].double(), ref[1]["o"], atol=1e-5)
    np.testing.assert_allclose(hooks[1].stacked().double(), ref[1]["h"], atol=1e-5)
    np.testing.assert_allclose(hooks[2].stacked().double(), ref[2]["h"], atol=1e-5)
    h = hooks[1].stacked()
    assert torch.all(h[:, 1, [0, 4, 10]] == 0) and torch.all(h[:, 2, 7] == 0) and torch.all(h[:, 0, 7] != 0)


def test_input_gate_offsets_freeze_a_units_cell_at_zero(model, tokens):
    """Setting gates by offsets: input gate -1e4 (i = 0) keeps c_t = f c_{t-1} = 0 from the zero
    state, so c = h = 0 exactly for those units, in the recurrence too; the others are untouched."""
    off = torch.zeros(4 * 11)
    off[[3, 8]] = -1e4  # rows of the input gate i: 0..H-1
    cell, hidden, gates = collect("cell", 2), collect("hidden", 2), collect("gates", 2, "i")
    run_stream(model, tokens, [gate_bias(2, off), cell, hidden, gates], window=40)
    assert torch.all(gates.stacked()["i"][:, :, [3, 8]] == 0)
    assert torch.all(cell.stacked()[:, :, [3, 8]] == 0) and torch.all(hidden.stacked()[:, :, [3, 8]] == 0)
    ref = step_by_step(model, tokens)
    keep = [u for u in range(11) if u not in (3, 8)]
    assert (hidden.stacked()[:, 0, keep].double() - ref[1]["h"][:, 0, keep]).abs().max() > 1e-3  # layer 2 changed


# -- copies ---------------------------------------------------------------------------------------

def test_copies_with_their_own_masks_equal_separate_runs(model, tokens):
    masks = torch.ones(3, 11)
    masks[1, :5] = 0
    masks[2, 5:] = 0.5
    run = run_stream(model, tokens, [mask_output(2, masks)], batch_size=2, copies=3, window=30, nll=True)
    assert run.nll.shape == (80, 6)
    by_copy = run.nll_by_copy()
    for c in range(3):
        one = run_stream(model, tokens, [mask_output(2, masks[c])], batch_size=2, window=30, nll=True)
        np.testing.assert_allclose(run.nll[:, 2 * c:2 * c + 2], one.nll, atol=1e-6)  # copy-major batch
        np.testing.assert_allclose(by_copy[c], one.nll.t().reshape(-1), atol=1e-6)  # stream after stream
    np.testing.assert_allclose(run.nll[:, :2], plain_nll(model, tokens, 2, 30), atol=1e-6)  # all-ones copy: intact


def test_layers_before_the_first_write_run_once(model, tokens):
    seen = []

    def spy(value, block):
        seen.append((block.layer, value.shape[1], block.expanded))

    hooks = [Hook("hidden", spy), gate_bias(2, torch.zeros(3, 44)), mask_output(3, torch.ones(5))]
    run_stream(model, tokens[:30], hooks, copies=3, window=29)
    assert seen == [(1, 1, False), (2, 3, True), (3, 3, True)]
    seen.clear()
    run_stream(model, tokens[:30], [Hook("hidden", spy), mask_output(2, torch.ones(3, 11))], copies=3)
    assert seen == [(1, 1, False), (2, 1, False), (3, 3, True)]


def test_zero_gate_offsets_and_unit_masks_are_the_intact_model(model, tokens):
    ref = run_stream(model, tokens, window=40, nll=True).nll
    for hooks in ([gate_bias(1, torch.zeros(36))], [mask_output(3, torch.ones(5))]):
        run = run_stream(model, tokens, hooks, window=40, nll=True)
        np.testing.assert_allclose(run.nll, ref, atol=1e-6)


# -- hook points ----------------------------------------------------------------------------------

def test_input_and_logits_hooks_replace(model, tokens):
    zeros = run_stream(model, tokens, [Hook("logits", lambda v, b: torch.zeros_like(v))], nll=True).nll
    np.testing.assert_allclose(zeros, np.log(V), rtol=1e-6)  # uniform prediction
    blank = copy.deepcopy(model)
    with torch.no_grad():
        blank.encoder.weight.zero_()  # every input embedding 0 (the tied decoder too: compare hidden states)
    got = collect("hidden", 3)
    run_stream(model, tokens, [Hook("input", lambda v, b: v * 0), got])
    want = collect("hidden", 3)
    run_stream(blank, tokens, [want])
    assert torch.equal(got.stacked(), want.stacked())


def test_state_carries_over_runs(model, tokens):
    whole = collect("hidden", 2)
    run_stream(model, tokens, [whole], window=20)
    first, second = collect("hidden", 2), collect("hidden", 2)
    r1 = run_stream(model, tokens[:81], [first], window=20)
    run_stream(model, tokens[80:], [second], window=20, state=r1.states)
    assert torch.equal(torch.cat([first.stacked(), second.stacked()]), whole.stacked())


def test_training_flag_is_restored_and_dropout_never_runs(model, tokens):
    ref = run_stream(model, tokens, nll=True).nll
    model.train()
    try:
        assert torch.equal(run_stream(model, tokens, nll=True).nll, ref)
        assert model.training
    finally:
        model.eval()


def test_one_progress_step_per_block(model, tokens):
    steps = []
    run_stream(model, tokens, window=10, block_tokens=30, progress=steps.append)
    assert steps == [1] * 6  # 162 steps: 17 windows of 10, 3 per block


def test_hook_errors_are_option_errors(model, tokens):
    bad = [lambda: Hook("nowhere", print), lambda: Hook("hidden", print, bias=torch.zeros(3)),
           lambda: Hook("output", bias=torch.zeros(3), layer=1), lambda: Hook("input", print, layer=1),
           lambda: Hook("hidden", print, layer=0), lambda: collect("gates")]
    for make in bad:
        with pytest.raises(OptionError):
            make()
    for hooks, kw in (([Hook("hidden", lambda v, b: v * 2, layer=1)], {}),  # read-only point
                      ([collect("hidden", 4)], {}),
                      ([collect("gates", 1, "fx")], {}),
                      ([gate_bias(1, torch.zeros(35))], {}),
                      ([gate_bias(1, torch.zeros(2, 36))], {"copies": 3}),
                      ([], {"window": 0})):
        with pytest.raises(OptionError):
            run_stream(model, tokens, hooks, **kw)
    with pytest.raises(OptionError, match="no decoder"):
        run_stream(list(model.rnns), torch.randn(10, 5), nll=True)
