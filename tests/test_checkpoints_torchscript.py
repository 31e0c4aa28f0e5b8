"""TorchScript archives (``torch.jit.save``): their weights are read through the restricted
unpickler; the archive's code is never compiled or run (``torch.load`` would hand the file to
``torch.jit.load``, which does both). Hostile TorchScript archives are in test_security.py."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest
import torch
import torch.nn as nn
from helpers import run_cli_inprocess

from timescale_probe.checkpoints import load_checkpoint, read_card, sniff


class _LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Embedding(20, 8)
        self.rnn = nn.LSTM(8, 6, 2)
        self.decoder = nn.Linear(6, 20)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.encoder(x))
        return self.decoder(out)


@pytest.fixture
def no_torch_loading(monkeypatch):
    """Fail the test if anything hands the archive to torch's own loaders."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load / torch.jit.load was called on a TorchScript archive")
    monkeypatch.setattr(torch.jit, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)


def _script(module: nn.Module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.save is deprecated, files made with it are not
        torch.jit.save(torch.jit.script(module), str(path))
    return path


def test_scripted_lm_gives_its_exact_weights(tmp_path, no_torch_loading):
    torch.manual_seed(0)
    lm = _LM()
    path = _script(lm, tmp_path / "lm.pt")
    assert sniff(path) == "torchscript" and read_card(path) == {}
    stack = load_checkpoint(path)
    assert stack.provenance.source_format == "torchscript"
    assert any("code was neither compiled nor run" in n for n in stack.provenance.notes)
    assert stack.layer_sizes == [6, 6] and stack.cell_name.startswith("lstm")
    for k, layer in enumerate(stack.layers):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            assert torch.equal(getattr(layer, name), getattr(lm.rnn, f"{name}_l{k}").detach()), (k, name)
    assert torch.equal(stack.embedding, lm.encoder.weight.detach())
    assert torch.equal(stack.decoder_weight, lm.decoder.weight.detach())
    assert torch.equal(stack.decoder_bias, lm.decoder.bias.detach()) and not stack.tied


@pytest.mark.parametrize("make, cell", [
    (lambda: nn.GRU(5, 4, 2), "gru"),
    (lambda: nn.RNN(5, 4, nonlinearity="relu"), "rnn_relu"),
    (lambda: nn.RNN(5, 4), "rnn_tanh"),
])
def test_scripted_cells_keep_their_mode(tmp_path, no_torch_loading, make, cell):
    """The cell comes from the scripted module's ``mode`` (a plain state dict cannot tell relu from tanh)."""
    torch.manual_seed(1)
    m = make()
    stack = load_checkpoint(_script(m, tmp_path / "m.pt"))
    assert stack.cell.name == cell
    assert torch.equal(stack.layers[0].weight_hh, m.weight_hh_l0.detach())


def test_cli_timescales_equal_those_of_the_state_dict(tmp_path):
    torch.manual_seed(2)
    lm = _LM()
    _script(lm, tmp_path / "lm_script.pt")
    torch.save(lm.state_dict(), tmp_path / "lm_sd.pt")
    tables = []
    for name in ("lm_script.pt", "lm_sd.pt"):
        r = run_cli_inprocess("timescales", tmp_path / name, "--out", tmp_path / name.replace(".pt", ""))
        assert r.returncode == 0, r.stderr
        tables.append(pd.read_csv(tmp_path / name.replace(".pt", "") / "timescales.csv"))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    r = run_cli_inprocess("inspect", tmp_path / "lm_script.pt", "--format", "state-dict")
    assert r.returncode == 2 and "TorchScript archive" in r.stderr and len(r.stderr.strip().splitlines()) == 1
