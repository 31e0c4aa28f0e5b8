"""GRU, plain-RNN and hard-sigmoid models on the stream runner: gates from data, evaluation and the
errors a plain RNN gets. References are step-by-step loops over timescale_probe.cells.gate_values
(written for one step, applied in a Python loop here: the slow, obvious way)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from timescale_probe.cells import gate_values, next_state
from timescale_probe.checkpoints import load_checkpoint
from timescale_probe.errors import OptionError
from timescale_probe.gates import estimate_timescales
from timescale_probe.models import LanguageModel
from timescale_probe.runner import collect, run_stream

FIX = Path(__file__).parent / "fixtures" / "recurrent"


def _reference_gates(model: LanguageModel, tokens: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """Every layer's gates at every step of one stream, one step at a time."""
    x = model.encoder(tokens[:-1].view(-1, 1))
    per_layer = []
    for rnn, cell in zip(model.rnns, model.cells):
        h = x.new_zeros(1, rnn.hidden_size)
        c = x.new_zeros(1, rnn.hidden_size) if cell.has_cell_state else None
        steps, outs = [], []
        for t in range(x.shape[0]):
            x_proj = x[t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
            g = gate_values(cell, x_proj, h, rnn.weight_hh_l0, rnn.bias_hh_l0)
            h, c = next_state(cell, g, h, c)
            steps.append(g)
            outs.append(h)
        per_layer.append({k: torch.stack([s[k] for s in steps]) for k in steps[0]})
        x = torch.stack(outs)
    return per_layer


@pytest.mark.parametrize("fixture", ["pt_wlm_gru.pt", "k3_gru_before.keras", "k3_gru_hard.keras"])
@torch.no_grad()
def test_gru_gates_from_the_runner_equal_a_step_loop(fixture):
    model = LanguageModel.from_stack(load_checkpoint(FIX / fixture)).eval()
    V = model.config.vocab_size
    tokens = torch.randint(0, V, (60,), generator=torch.Generator().manual_seed(0))
    ref = _reference_gates(model, tokens)
    hooks = [collect("gates", layer=k + 1, gates="rzn") for k in range(model.num_layers)]
    run_stream(model, tokens, hooks, window=7)
    for k, hook in enumerate(hooks):
        got = {name: torch.cat([blk[name] for blk in hook.store]) for name in ("r", "z", "n", "z_comp")}
        for name in ("r", "z", "n"):
            torch.testing.assert_close(got[name][:, 0], ref[k][name][:, 0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got["z_comp"], 1 - got["z"], rtol=0, atol=1e-6)


@torch.no_grad()
def test_gru_timescales_from_data_use_the_update_gate():
    """T_data of a GRU = T of the mean update gate z over each window (paper convention), checked
    against the step loop's z with one window covering the whole stream."""
    model = LanguageModel.from_stack(load_checkpoint(FIX / "pt_wlm_gru.pt")).eval()
    tokens = torch.randint(0, model.config.vocab_size, (80,), generator=torch.Generator().manual_seed(1))
    est = estimate_timescales(model, tokens, window=200)
    ref = _reference_gates(model, tokens)
    for k in range(model.num_layers):
        z_bar = ref[k]["z"][:, 0].double().mean(0).numpy()
        got = est.table_.query(f"layer == {k + 1}")
        np.testing.assert_allclose(got["f_mean"], z_bar, rtol=1e-6)
        np.testing.assert_allclose(got["T_data"], -1.0 / np.log(z_bar), rtol=1e-5)


@torch.no_grad()
def test_hard_sigmoid_lstm_on_the_runner_equals_keras():
    """Evaluation runs the saved activations: the runner's logits for the Keras 3 hard-sigmoid LSTM
    equal Keras's own (the fixture's outputs), and its forget gates equal the step loop's."""
    stack = load_checkpoint(FIX / "k3_lstm_hard.keras")
    model = LanguageModel.from_stack(stack).eval()
    x = np.load(FIX / "k3_lstm_hard.input.npy")       # (2, T) batch-first
    want = np.load(FIX / "k3_lstm_hard.out_logits.npy")
    seen = collect("logits")
    for row in range(x.shape[0]):
        tokens = torch.from_numpy(np.append(x[row], 0).astype(np.int64))  # one extra target: every input runs
        seen.store.clear()
        run_stream(model, tokens, [seen], window=4)
        logits = torch.cat(seen.store)[:, 0].numpy()
        np.testing.assert_allclose(logits, want[row], atol=2e-5)
    tokens = torch.from_numpy(np.append(x[0], 0).astype(np.int64))
    g = collect("gates", layer=1, gates="f")
    run_stream(model, tokens, [g], window=4)
    f = torch.cat([blk["f"] for blk in g.store])[:, 0]
    torch.testing.assert_close(f, _reference_gates(model, tokens)[0]["f"][:, 0], rtol=1e-5, atol=1e-6)
    assert ((f == 0) | (f == 1)).any()  # the clipped ends are visited: the hard sigmoid matters


@torch.no_grad()
def test_plain_rnn_gates_are_refused_with_the_pointer():
    model = LanguageModel.from_stack(load_checkpoint(FIX / "pt_wlm_rnn_tanh.pt")).eval()
    tokens = torch.randint(0, model.config.vocab_size, (30,), generator=torch.Generator().manual_seed(2))
    with pytest.raises(OptionError, match="activity-timescales"):
        estimate_timescales(model, tokens)
    run = run_stream(model, tokens, [], nll=True)  # evaluation needs no gate
    assert torch.isfinite(run.nll).all()
