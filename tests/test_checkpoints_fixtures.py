"""Makers of foreign checkpoint files for the checkpoint tests (no tests here).

The classes of the reference repo / AWD-LSTM (``model.RNNModel``, ``model_mts.RNNModel``,
``weight_drop.WeightDrop``, ``locked_dropout.LockedDropout``, ``splitcross.SplitCrossEntropyLoss``)
and of pytorch/examples ``word_language_model`` (``model.RNNModel``) are recreated from source text
in throwaway modules registered in ``sys.modules`` only while the files are written; the loader
then reads the files with those modules gone. The source text is registered with ``linecache`` so
that legacy ``torch.save`` embeds it, as real legacy files do.
"""
from __future__ import annotations

import contextlib
import linecache
import sys
import types
from pathlib import Path

import numpy as np
import torch

MODULE_SOURCES = {
    "locked_dropout": '''
import torch.nn as nn

class LockedDropout(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, dropout=0.5):
        return x
''',
    "weight_drop": '''
import torch
from torch.nn import Parameter

class WeightDrop(torch.nn.Module):
    def __init__(self, module, weights, dropout=0, variational=False, reference_style=True):
        super().__init__()
        self.module = module
        self.weights = weights
        self.dropout = dropout
        self.variational = variational
        self.reference_style = reference_style
        self._setup()

    def widget_demagnetizer_y2k_edition(*args, **kwargs):
        return

    def _setup(self):
        if issubclass(type(self.module), torch.nn.RNNBase):
            self.module.flatten_parameters = self.widget_demagnetizer_y2k_edition
        for name_w in self.weights:
            w = getattr(self.module, name_w)
            del self.module._parameters[name_w]
            self.module.register_parameter(name_w + '_raw', Parameter(w.data))

    def _setweights(self):
        for name_w in self.weights:
            raw_w = getattr(self.module, name_w + '_raw')
            w = torch.nn.functional.dropout(raw_w, p=self.dropout, training=self.training)
            if self.reference_style:   # the reference repo: a new Parameter (lands in _parameters)
                setattr(self.module, name_w, Parameter(w.data))
            else:                      # AWD-LSTM: a plain tensor attribute
                setattr(self.module, name_w, w.data.clone())
''',
    "splitcross": '''
import torch
import torch.nn as nn

class SplitCrossEntropyLoss(nn.Module):
    def __init__(self, hidden_size, splits, verbose=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.splits = [0] + splits + [100 * 1000000]
        self.nsplits = len(self.splits) - 1
        self.stats = {}
        if self.nsplits > 1:
            self.tail_vectors = nn.Parameter(torch.zeros(self.nsplits - 1, hidden_size))
            self.tail_bias = nn.Parameter(torch.zeros(self.nsplits - 1))
''',
}

_AWD_MODEL = '''
import numpy as np
import scipy.stats
import torch
import torch.nn as nn
from locked_dropout import LockedDropout
from weight_drop import WeightDrop

class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, dropouth=0.5, dropouti=0.5,
                 dropoute=0.1, wdrop=0, tie_weights=False, mts=False, reference_style=True):
        super().__init__()
        self.lockdrop = LockedDropout()
        self.idrop = nn.Dropout(dropouti)
        self.hdrop = nn.Dropout(dropouth)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        sizes = [nhid if l != nlayers - 1 else (ninp if tie_weights else nhid) for l in range(nlayers)]
        self.rnns = [torch.nn.LSTM(ninp if l == 0 else nhid, sizes[l], 1, dropout=0) for l in range(nlayers)]
        if mts:
            cb = [np.zeros(s) for s in sizes]
            half = int(0.5 * sizes[0])
            cb[0][:half] = -1 * np.log(np.exp(1 / 3) - 1)
            cb[0][half:] = -1 * np.log(np.exp(1 / 4) - 1)
            T = scipy.stats.invgamma.isf(np.linspace(0, 1, sizes[1] + 1), a=0.56, scale=1)[1:]
            with np.errstate(divide="ignore", over="ignore"):
                cb[1] = -1 * np.log(np.exp(1 / T) - 1)
            for l in range(nlayers - 1):
                self.rnns[l].bias_ih_l0.data[0:sizes[l] * 2] = 0
                self.rnns[l].bias_hh_l0.data[0:sizes[l] * 2] = torch.from_numpy(
                    np.hstack((-1 * cb[l], cb[l])).astype(np.float32))
                self.rnns[l].bias_ih_l0.requires_grad = False
                self.rnns[l].bias_hh_l0.requires_grad = False
        if wdrop:
            self.rnns = [WeightDrop(rnn, ['weight_hh_l0'], dropout=wdrop, reference_style=reference_style)
                         for rnn in self.rnns]
        self.rnns = torch.nn.ModuleList(self.rnns)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.rnn_type = rnn_type
        self.ninp = ninp
        self.nhid = nhid
        self.nlayers = nlayers
        self.dropout = dropout
        self.dropouti = dropouti
        self.dropouth = dropouth
        self.dropoute = dropoute
        self.tie_weights = tie_weights
'''

_WLM_MODEL = '''
import torch.nn as nn

class RNNModel(nn.Module):
    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers
'''

FOREIGN_MODULES = ("model", "model_mts", "weight_drop", "locked_dropout", "splitcross")


@contextlib.contextmanager
def foreign_modules(model_source: str, model_module: str = "model"):
    """Register the throwaway modules; remove them (and their linecache entries) on exit."""
    sources = dict(MODULE_SOURCES)
    sources[model_module] = model_source
    saved = {n: sys.modules.get(n) for n in FOREIGN_MODULES}
    made = {}
    try:
        for name in ("locked_dropout", "weight_drop", "splitcross", model_module):
            src = sources[name]
            filename = f"/nonexistent/foreign/{name}.py"
            linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
            mod = types.ModuleType(name)
            mod.__file__ = filename
            sys.modules[name] = mod
            exec(compile(src, filename, "exec"), mod.__dict__)
            made[name] = mod
        yield made
    finally:
        for name in FOREIGN_MODULES:
            if saved[name] is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved[name]
            linecache.cache.pop(f"/nonexistent/foreign/{name}.py", None)


def _fake_step(model: torch.nn.Module, optimizer) -> None:
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.full_like(p, 0.01)
    optimizer.step()


def save_awd(path: Path, *, legacy: bool = False, mts: bool = False, with_optimizer: bool = True,
             reference_style: bool = True, forward: bool = True, seed: int = 0, ninp: int = 8, nhid: int = 12,
             nlayers: int = 3, ntoken: int = 50) -> dict:
    """Write ``[model, criterion(, optimizer)]`` as the reference / AWD-LSTM does; return the expected tensors."""
    torch.manual_seed(seed)
    module = "model_mts" if mts else "model"
    with foreign_modules(_AWD_MODEL, module) as mods:
        model = mods[module].RNNModel("LSTM", ntoken, ninp, nhid, nlayers, dropout=0.4, dropouth=0.25,
                                      dropouti=0.4, dropoute=0.1, wdrop=0.5, tie_weights=True, mts=mts,
                                      reference_style=reference_style)
        # make the trained (raw) recurrent matrices differ from anything else
        with torch.no_grad():
            for r in model.rnns:
                r.module.weight_hh_l0_raw.add_(0.5)
                if not mts:
                    r.module.bias_hh_l0.uniform_(-2, 3)
        if forward:
            model.train()
            for r in model.rnns:
                r._setweights()   # leaves the dropped weight_hh_l0 next to weight_hh_l0_raw
        criterion = mods["splitcross"].SplitCrossEntropyLoss(ninp, splits=[20], verbose=False)
        objs = [model, criterion]
        if with_optimizer:
            opt = torch.optim.ASGD(list(model.parameters()) + list(criterion.parameters()), lr=30, t0=0, lambd=0.0)
            _fake_step(model, opt)
            objs.append(opt)
        expected = {
            "layers": [{"weight_ih": r.module.weight_ih_l0.detach().clone(),
                        "weight_hh": r.module.weight_hh_l0_raw.detach().clone(),
                        "bias_ih": r.module.bias_ih_l0.detach().clone(),
                        "bias_hh": r.module.bias_hh_l0.detach().clone()} for r in model.rnns],
            "embedding": model.encoder.weight.detach().clone(),
            "decoder_bias": model.decoder.bias.detach().clone(),
        }
        kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.save(objs, path, **kwargs)
    return expected


def save_wlm(path: Path, *, legacy: bool = False, tie: bool = False, seed: int = 0, ninp: int = 6, nhid: int = 6,
             nlayers: int = 2, ntoken: int = 30) -> torch.nn.Module:
    """Write a whole pickled pytorch/examples word_language_model ``RNNModel``; return the model."""
    torch.manual_seed(seed)
    with foreign_modules(_WLM_MODEL, "model") as mods:
        model = mods["model"].RNNModel("LSTM", ntoken, ninp, nhid, nlayers, dropout=0.2, tie_weights=tie)
        with torch.no_grad():
            for name, p in model.rnn.named_parameters():
                if name.startswith("bias"):
                    p.uniform_(-3, 4)
        kwargs = {"_use_new_zipfile_serialization": False} if legacy else {}
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.save(model, path, **kwargs)
    return model


def hand_timescales(bias_ih: torch.Tensor, bias_hh: torch.Tensor) -> np.ndarray:
    """-1/log(sigmoid(b_ih_f + b_hh_f)) computed the plain way, in float64."""
    H = bias_ih.shape[0] // 4
    b = bias_ih[H:2 * H].double().numpy() + bias_hh[H:2 * H].double().numpy()
    with np.errstate(divide="ignore"):
        return -1.0 / np.log(1.0 / (1.0 + np.exp(-b)))
