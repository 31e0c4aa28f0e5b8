"""The bare language model the training benchmarks compare against (``train_throughput.py``,
``gpu_check.py``): embedding -> one cuDNN-eligible ``nn.LSTM`` per layer -> tied linear decoder, no
dropout of any kind, no AR/TAR. Not a benchmark itself (the leading underscore)."""
from __future__ import annotations

from torch import nn


class BareLM(nn.Module):
    """The limit: embedding -> one cuDNN nn.LSTM per layer -> tied linear; no dropout of any kind."""

    def __init__(self, vocab: int, emb: int, sizes: tuple[int, ...]):
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        dims = [emb, *sizes]
        self.rnns = nn.ModuleList(nn.LSTM(dims[k], dims[k + 1]) for k in range(len(sizes)))
        self.decoder = nn.Linear(sizes[-1], vocab)
        self.decoder.weight = self.encoder.weight

    def init_hidden(self, b: int):
        """Zero states on the model's device and dtype."""
        w = self.encoder.weight
        return [(w.new_zeros(1, b, r.hidden_size), w.new_zeros(1, b, r.hidden_size)) for r in self.rnns]

    def forward(self, x, hidden):
        h, new = self.encoder(x), []
        for rnn, hx in zip(self.rnns, hidden):
            h, hk = rnn(h, hx)
            new.append(hk)
        return self.decoder(h), new
