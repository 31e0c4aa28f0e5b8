"""Autocorrelation of many series over a long stream, by FFT, in blocks, with a block bootstrap.

The estimator (per series ``x_t``, ``t = 0..N-1`` after burn-in, mean ``m`` over all ``N`` steps)::

    C(k) = sum_{t=0}^{N-k-1} (x_t - m)(x_{t+k} - m)          (lags k = 0..L)
    r(k) = [C(k) / (N - k)] / [C(0) / N]                      ("unbiased" normalisation per lag)

Streams arrive in chunks ``(T, B, U)`` (time first, ``B`` parallel streams, ``U`` series); nothing
but one block (plus ``L`` steps of look-ahead) is held at a time. The stream is cut into
consecutive blocks of ``block`` steps; a block owns the lagged pairs ``(t, t+k)`` whose first
step ``t`` lies in it (the second may lie in the next block), so every pair of the stream is
counted exactly once and the sums are additive over blocks. Per block we keep, for every lag,
the sum of products ``S_b(k)``, the pair count ``n_b(k)`` and the sums of the first and second
members ``A_b(k)``, ``B_b(k)``; the mean ``m`` is one for all streams (they run the same
process); then for block weights ``w_b`` (1 for the estimate, multinomial
counts for a bootstrap replicate)::

    m = sum w_b s_b / sum w_b M_b
    C(k) = sum w_b S_b(k) - m (sum w_b A_b(k) + sum w_b B_b(k)) + m^2 sum w_b n_b(k)

which is exact (not an approximation) for every set of weights. ``S_b`` comes from one FFT
cross-correlation of the block with itself plus its look-ahead. Sums are taken in float64 on
series shifted by the mean of the first chunk seen (a constant shift leaves C unchanged and
avoids cancellation when a unit's mean is large against its spread).

Resampling whole blocks (a non-overlapping block bootstrap of the lagged pairs) keeps the
dependence within blocks; blocks should be much longer than the slowest timescale of interest.
Parallel streams each contribute their own blocks; pairs never cross streams.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from ..errors import OptionError

__all__ = ["autocorrelation", "AutocorrelationBlocks", "AutocorrelationAccumulator"]


@dataclass
class AutocorrelationBlocks:
    """Per-block sums of a stream (see the module docstring); arrays over blocks ``nb``, series ``U``
    and lags ``L + 1``: ``S, A, B (nb, U, L+1)``, ``n (nb, L+1)``, ``s (nb, U)``, ``M (nb,)``; sums are of
    the series minus ``offset (nb, U)`` (one shift for all blocks and streams)."""

    S: np.ndarray
    A: np.ndarray
    B: np.ndarray
    n: np.ndarray
    s: np.ndarray
    M: np.ndarray
    offset: np.ndarray

    @property
    def n_blocks(self) -> int:
        return int(self.M.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.M.sum())

    @property
    def max_lag(self) -> int:
        return int(self.n.shape[1] - 1)

    def covariance(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(C / n, n)``: the lagged covariance per pair ``(R, U, L+1)`` and pair counts ``(R, L+1)``
        for block weights ``(R, nb)`` (``None``: every block once, ``R = 1``)."""
        w = np.ones((1, self.n_blocks)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
        nb, U, L1 = self.S.shape
        S = (w @ self.S.reshape(nb, -1)).reshape(-1, U, L1)
        AB = (w @ (self.A + self.B).reshape(nb, -1)).reshape(-1, U, L1)
        n = w @ self.n
        m = (w @ self.s) / (w @ self.M)[:, None]  # (R, U), in shifted coordinates
        C = S - m[:, :, None] * AB + (m * m)[:, :, None] * n[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            return C / n[:, None, :], n

    def acf(self, weights: np.ndarray | None = None, *, rtol: float = 1e-10) -> np.ndarray:
        """Autocorrelation ``(R, U, L+1)`` (``r(0) = 1``); NaN for a constant series: variance 0, or
        at most ``rtol`` times its mean square (constant up to float32 rounding: spread < 1e-5 of size)."""
        cov, n = self.covariance(weights)
        var = cov[:, :, :1]
        w = np.ones((1, self.n_blocks)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
        off = self.offset
        square = self.S[:, :, 0] + 2 * off * self.s + off * off * self.M[:, None]  # sum of x^2 per block
        mean_square = (w @ square) / (w @ self.M)[:, None]  # (R, U)
        dead = ~(var[:, :, 0] > rtol * mean_square)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cov / var
        r[dead] = np.nan
        return r

    def bootstrap_weights(self, n_boot: int, seed: int) -> np.ndarray:
        """Multinomial block counts ``(n_boot, nb)``: each replicate draws ``nb`` blocks with replacement."""
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, self.n_blocks, size=(n_boot, self.n_blocks))
        w = np.zeros((n_boot, self.n_blocks))
        np.add.at(w, (np.arange(n_boot)[:, None], idx), 1.0)
        return w


class AutocorrelationAccumulator:
    """Streaming block sums of the autocorrelation of ``U`` series, ``B`` parallel streams.

    ``update(chunk)`` with chunks ``(T, B, U)`` (or ``(T, U)`` for one stream), in order;
    ``finish()`` returns :class:`AutocorrelationBlocks`. The first ``burn_in`` steps of every stream
    are discarded. ``block`` steps per block (``>= max_lag``).
    """

    def __init__(self, max_lag: int, *, block: int = 2048, burn_in: int = 0) -> None:
        if max_lag < 1:
            raise OptionError(f"max_lag must be >= 1 (got {max_lag})", param="max_lag")
        if block < max_lag:
            raise OptionError(f"block must be at least max_lag ({max_lag}) steps (got {block})", param="block")
        if burn_in < 0:
            raise OptionError(f"burn_in must be >= 0 (got {burn_in})", param="burn_in")
        self.max_lag, self.block, self.burn_in = int(max_lag), int(block), int(burn_in)
        self._skip = self.burn_in
        self._buf: np.ndarray | None = None  # (T, B, U) float64, shifted, not yet owned by a block
        self._shift: np.ndarray | None = None  # (1, U)
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._n_fft = sfft.next_fast_len(self.block + self.max_lag, real=True)
        self.steps_seen = 0

    def update(self, chunk) -> None:
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3:
            raise OptionError(f"chunks must be (T, U) or (T, B, U) arrays, got shape {x.shape}")
        self.steps_seen += x.shape[0]
        if self._skip:
            cut = min(self._skip, x.shape[0])
            x, self._skip = x[cut:], self._skip - cut
        if x.shape[0] == 0:
            return
        if self._shift is None:  # one shift for every stream: the sums of all blocks must share it
            self._shift = x.mean(axis=(0, 1))[None]
        x = x - self._shift
        self._buf = x if self._buf is None else np.concatenate([self._buf, x], axis=0)
        L, M = self.max_lag, self.block
        while self._buf.shape[0] >= M + L:
            self._parts.append(self._block_sums(self._buf[:M + L], M))
            self._buf = self._buf[M:]

    def finish(self) -> AutocorrelationBlocks:
        """The block sums of everything seen; the stream's last block may be shorter than ``block``."""
        buf = self._buf
        if buf is not None and buf.shape[0]:
            while buf.shape[0] > self.block:  # at most one full block plus a short one remain
                self._parts.append(self._block_sums(buf, self.block))
                buf = buf[self.block:]
            self._parts.append(self._block_sums(buf, buf.shape[0]))
            self._buf = buf[:0]
        if not self._parts:
            raise OptionError(f"no steps left after a burn-in of {self.burn_in} steps ({self.steps_seen} seen): "
                              "use a shorter burn-in or more tokens", param="burn_in")
        S, A, Bs, n, s, Mb = (np.concatenate(p, axis=0) for p in zip(*self._parts))
        offset = np.broadcast_to(self._shift, s.shape).copy()
        return AutocorrelationBlocks(S=S, A=A, B=Bs, n=n, s=s, M=Mb, offset=offset)

    def _block_sums(self, seg: np.ndarray, M: int) -> tuple[np.ndarray, ...]:
        """Sums of the block ``seg[:M]`` with look-ahead ``seg[M:]`` (``(E, B, U)``, ``E <= M + L``;
        ``E < M + L`` only where the stream ends: pairs past it do not exist)."""
        L = self.max_lag
        E, nB, U = seg.shape
        lags = np.arange(L + 1)
        head = seg[:M]
        fa = sfft.rfft(head, n=self._n_fft, axis=0)
        fe = sfft.rfft(seg, n=self._n_fft, axis=0)
        S = sfft.irfft(np.conj(fa) * fe, n=self._n_fft, axis=0)[:L + 1]  # (L+1, B, U)
        # pairs (t, t+k) with t < M and t + k < E; counts and member sums via prefix sums
        first_end = np.minimum(M, E - lags)  # t runs over [0, first_end)
        first_end = np.maximum(first_end, 0)
        cs = np.concatenate([np.zeros((1, nB, U)), np.cumsum(seg, axis=0)], axis=0)  # (E+1, B, U)
        A = cs[first_end]  # (L+1, B, U)
        B = cs[np.minimum(first_end + lags, E)] - cs[np.minimum(lags, E)]
        n = first_end.astype(np.float64)
        to_blocks = (lambda a: np.moveaxis(a, 0, -1))  # (L+1, B, U) -> (B, U, L+1)
        return (to_blocks(S), to_blocks(A), to_blocks(B), np.broadcast_to(n, (nB, L + 1)).copy(),
                cs[M], np.full(nB, float(M)))


def autocorrelation(x, max_lag: int, *, burn_in: int = 0, block: int | None = None) -> np.ndarray:
    """Autocorrelation ``(L+1, ...)`` of the series in ``x`` (time along axis 0, any trailing shape),
    ``r(0) = 1``, unbiased normalisation per lag (see the module docstring); NaN for constant series."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] - burn_in < max_lag + 1:
        raise OptionError(f"the series has {x.shape[0] if x.ndim else 0} steps; max_lag {max_lag} needs at least "
                          f"{burn_in + max_lag + 1} (burn-in included)", param="max_lag")
    trailing = x.shape[1:]
    flat = x.reshape(x.shape[0], 1, -1)
    acc = AutocorrelationAccumulator(max_lag, block=block or max(x.shape[0], max_lag), burn_in=burn_in)
    acc.update(flat)
    r = acc.finish().acf()[0]  # (U, L+1)
    return np.moveaxis(r, -1, 0).reshape((max_lag + 1, *trailing))
