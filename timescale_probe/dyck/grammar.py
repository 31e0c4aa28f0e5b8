"""Dyck-n: the PCFG sampler and the per-position annotation (targets, spans, depths).

Grammar (paper Fig. 2; docs/methods.md §6): ``S -> b_j S c_j`` (bracket type ``j``, probability ``p_types[j]``) ``| S S``
(``p_concat``) ``| empty`` (the rest). The paper's Dyck-2: ``S -> (S) | [S] | SS | empty``, each 0.25.
With those numbers every ``S`` has on average exactly one ``S`` child: a *critical* branching
process, which ends with probability 1 but whose expected size is infinite. So the sampler never
recurses; it expands the leftmost pending symbol of many derivations at once (one numpy step per
production, vectorised over derivations) and abandons a derivation as soon as the characters already
written plus the closing brackets already owed exceed ``max_len`` (a lower bound on its final length,
so stopping early is exactly rejection of the finished string).

Token codes (used everywhere in this package): open bracket of type ``j`` -> ``j``, closing bracket
of type ``j`` -> ``n + j``, for ``j = 0..n-1``. Characters: ``()``, ``[]``, ``{}``, ``<>``, then
``Aa``, ``Bb``, ... (upper case opens, lower case closes).

Targets (docs/methods.md §6): after reading position ``t`` the innermost bracket still open, as ``n`` bits in
the reference's binary order: column ``k`` is bracket type ``n-1-k``, so for Dyck-2 ``'(' -> 01``,
``'[' -> 10`` and an empty stack ``-> 00``.

Span of a closing bracket = its position minus its opening bracket's position plus one (``"()"`` = 2),
i.e. the number of steps the network has to remember the open bracket; 0 at opening brackets.
A sequence's *max timescale* is its largest span.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from math import comb

import numpy as np

from ..errors import InputError, OptionError

BASE_PAIRS = ("()", "[]", "{}", "<>")
MAX_TYPES = len(BASE_PAIRS) + 26


class DyckDataError(InputError):
    """A Dyck data folder or sequence file is missing, malformed or unbalanced."""


def bracket_pairs(n: int) -> list[str]:
    """The ``n`` open/close character pairs used for Dyck-n (``"()"``, ``"[]"``, ...)."""
    if not 1 <= n <= MAX_TYPES:
        raise OptionError(f"n (bracket types) must be between 1 and {MAX_TYPES}, got {n}", param="n")
    letters = [c + c.lower() for c in string.ascii_uppercase]
    return (list(BASE_PAIRS) + letters)[:n]


@dataclass(frozen=True)
class DyckGrammar:
    """The PCFG of Dyck-n. ``p_types[j]``: probability of ``S -> b_j S c_j``; ``p_concat``:
    ``S -> S S``; the remaining mass is ``S -> empty``. Lengths count bracket characters."""

    n: int = 2
    p_types: tuple[float, ...] = (0.25, 0.25)
    p_concat: float = 0.25
    min_len: int = 2
    max_len: int = 200

    @classmethod
    def make(cls, n: int = 2, p_bracket: float = 0.5, p_concat: float = 0.25, min_len: int = 2,
             max_len: int = 200, p_types: tuple[float, ...] | None = None) -> "DyckGrammar":
        """``p_bracket`` is split equally over the ``n`` types unless ``p_types`` is given."""
        bracket_pairs(n)  # n first: the split below divides by it
        if not 0 < p_bracket < 1:
            raise OptionError(f"p_bracket must lie strictly between 0 and 1, got {p_bracket}", param="p_bracket")
        if not 0 <= p_concat < 1:
            raise OptionError(f"p_concat must lie in [0, 1), got {p_concat}", param="p_concat")
        types = tuple(float(p) for p in p_types) if p_types is not None else (float(p_bracket) / n,) * n
        g = cls(n=n, p_types=types, p_concat=float(p_concat), min_len=int(min_len), max_len=int(max_len))
        g.validate()
        return g

    @property
    def p_empty(self) -> float:
        return 1.0 - sum(self.p_types) - self.p_concat

    @property
    def mean_offspring(self) -> float:
        """Expected number of ``S`` children of one ``S``: 1 is critical (the paper's grammar)."""
        return sum(self.p_types) + 2 * self.p_concat

    @property
    def pairs(self) -> list[str]:
        return bracket_pairs(self.n)

    def validate(self) -> None:
        bracket_pairs(self.n)
        if len(self.p_types) != self.n:
            raise OptionError(f"{len(self.p_types)} bracket probabilities given for Dyck-{self.n}")
        if any(p < 0 for p in self.p_types) or self.p_concat < 0 or sum(self.p_types) <= 0:
            raise OptionError("grammar probabilities must be >= 0 with some bracket probability > 0")
        if self.p_empty <= 1e-12:
            raise OptionError(
                f"bracket + concat probabilities sum to {sum(self.p_types) + self.p_concat:g}: "
                "S -> empty needs probability > 0 or no derivation ends"
            )
        if self.min_len < 2:
            raise OptionError(f"min_len must be >= 2, got {self.min_len}", param="min_len")
        if self.max_len < self.min_len:
            raise OptionError(f"max_len must be >= min_len ({self.min_len}), got {self.max_len}", param="max_len")

    def count_strings(self) -> int:
        """Number of distinct Dyck-n strings with ``min_len <= length <= max_len``
        (``C_k n^k`` of length ``2k``, ``C_k`` the Catalan numbers; types with p=0 excluded)."""
        m = sum(1 for p in self.p_types if p > 0)
        if self.p_concat == 0:  # only nested strings b1 b2 ... c2 c1: m^k of length 2k
            return sum(m ** k for k in range((self.min_len + 1) // 2, self.max_len // 2 + 1))
        return sum(comb(2 * k, k) // (k + 1) * m ** k for k in range((self.min_len + 1) // 2, self.max_len // 2 + 1))


def sample_derivations(grammar: DyckGrammar, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Run ``count`` independent leftmost derivations; return the accepted ones (length within
    ``[min_len, max_len]``) as int8 code arrays, in derivation order. Vectorised over derivations."""
    n, max_len = grammar.n, grammar.max_len
    cum = np.cumsum(list(grammar.p_types) + [grammar.p_concat])  # r >= cum[-1] -> empty
    cap = 64
    stack = np.zeros((count, cap), dtype=np.int8)  # 0 = S, 1 + j = closing bracket of type j owed
    sp = np.ones(count, dtype=np.int64)  # stack size; the start symbol S is on it
    out = np.zeros((count, max_len), dtype=np.int8)
    olen = np.zeros(count, dtype=np.int64)
    owed = np.zeros(count, dtype=np.int64)  # closing brackets on the stack
    accepted = np.zeros(count, dtype=bool)
    active = np.arange(count)
    while active.size:
        a = active
        top = stack[a, sp[a] - 1]
        close = top > 0
        c = a[close]  # emit an owed closing bracket
        out[c, olen[c]] = n + top[close] - 1
        olen[c] += 1
        sp[c] -= 1
        owed[c] -= 1
        s = a[~close]  # expand a nonterminal S
        choice = np.searchsorted(cum, rng.random(s.size), side="right")
        is_br = choice < n
        b = s[is_br]
        fits = olen[b] + owed[b] + 2 <= max_len
        sp[b[~fits]] = -1  # abandoned: too long already
        b, tb = b[fits], choice[is_br][fits].astype(np.int8)
        out[b, olen[b]] = tb
        olen[b] += 1
        owed[b] += 1
        stack[b, sp[b] - 1] = tb + 1
        grow = np.concatenate([b, s[choice == n]])  # both push one more S
        if grow.size and sp[grow].max() >= cap:
            stack = np.concatenate([stack, np.zeros_like(stack)], axis=1)
            cap *= 2
        stack[grow, sp[grow]] = 0
        sp[grow] += 1
        e = s[choice > n]
        sp[e] -= 1
        done = sp[a] == 0
        accepted[a[done]] = olen[a[done]] >= grammar.min_len
        active = a[sp[a] > 0]
    keep = np.flatnonzero(accepted)
    return [out[i, : olen[i]].copy() for i in keep]


def _alphabet(pairs: list[str]) -> np.ndarray:
    return np.frombuffer("".join([p[0] for p in pairs] + [p[1] for p in pairs]).encode("ascii"), dtype=np.uint8)


def codes_to_string(codes: np.ndarray, pairs: list[str]) -> str:
    """The characters of a code array (open ``j`` -> ``pairs[j][0]``, close -> ``pairs[j][1]``)."""
    return _alphabet(pairs)[np.asarray(codes, dtype=np.int64)].tobytes().decode("ascii")


def strings_to_codes(seqs: list[str], pairs: list[str], where: str = "sequences") -> tuple[np.ndarray, np.ndarray]:
    """Concatenated codes of ``seqs`` and their lengths. Unknown characters raise DyckDataError."""
    lut = np.full(256, -1, dtype=np.int16)
    n = len(pairs)
    for j, p in enumerate(pairs):
        lut[ord(p[0])] = j
        lut[ord(p[1])] = n + j
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    raw = "".join(seqs).encode("utf-8", errors="replace")
    if len(raw) != lengths.sum():
        raise DyckDataError(f"{where}: non-ASCII characters; expected only {''.join(pairs)}")
    codes = lut[np.frombuffer(raw, dtype=np.uint8)]
    if codes.size and codes.min() < 0:
        bad = chr(raw[int(np.argmax(codes < 0))])
        raise DyckDataError(f"{where}: unexpected character {bad!r}; expected only {''.join(pairs)}")
    return codes.astype(np.int8), lengths


@dataclass
class Annotation:
    """Per-position annotation of a batch of sequences stored back to back (``offsets[i]`` is where
    sequence ``i`` starts in the flat arrays).

    ``targets``: (total, n) uint8 bits (column ``k`` = type ``n-1-k``); ``span``: span at closing
    brackets, 0 at opening ones; ``depth``: open brackets after reading the position;
    ``max_span``/``max_depth``: per sequence.
    """

    targets: np.ndarray
    span: np.ndarray
    depth: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    max_span: np.ndarray
    max_depth: np.ndarray


def annotate(codes: np.ndarray, lengths: np.ndarray, n: int, where: str = "sequences") -> Annotation:
    """Match brackets, compute targets and spans for many sequences at once (no per-token loop).

    Matching: give each opening bracket the depth after it and each closing bracket the depth
    before it; in a balanced string, sorting positions by (sequence, that level, position) lists
    each level's brackets as open, close, open, close, ... so consecutive sorted entries are the
    matched pairs. Unbalanced or mismatched sequences raise :class:`DyckDataError`.
    """
    codes = np.asarray(codes, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if np.any(lengths <= 0):
        raise DyckDataError(f"{where}: empty sequence at line {int(np.argmax(lengths <= 0)) + 1}")
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    seq = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(total) - offsets[seq]
    is_open = codes < n
    step = np.where(is_open, 1, -1)
    csum = np.cumsum(step)
    depth = csum - np.concatenate([[0], csum])[offsets][seq]  # depth after each position
    level = np.where(is_open, depth, depth + 1)
    bad = np.zeros(len(lengths), dtype=bool)
    np.logical_or.at(bad, seq, depth < 0)
    end_depth = depth[offsets + lengths - 1]
    bad |= end_depth != 0
    if bad.any():
        i = int(np.argmax(bad))
        raise DyckDataError(f"{where}: sequence {i + 1} is not balanced (line {i + 1})")
    order = np.lexsort((pos, level, seq))
    opens, closes = order[0::2], order[1::2]
    kind_ok = is_open[opens] & ~is_open[closes] & (codes[closes] - n == codes[opens])
    if not kind_ok.all():
        i = int(seq[opens[int(np.argmin(kind_ok))]])
        raise DyckDataError(f"{where}: sequence {i + 1} closes a bracket with the wrong type (line {i + 1})")
    span = np.zeros(total, dtype=np.int64)
    span[closes] = closes - opens + 1
    # Innermost open type after each position, as a pointer: an opening bracket is its own answer;
    # after a closing bracket the stack is what it was just before the matching opening bracket.
    # Resolve the pointer chains by pointer doubling (O(log length) vectorised rounds).
    EMPTY = total  # sentinel index whose answer is "empty stack"
    ptr = np.arange(total + 1)
    prev = np.where(pos[opens] > 0, opens - 1, EMPTY)
    ptr[closes] = prev
    while True:
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            break
        ptr = nxt
    typ = np.append(np.where(is_open, codes, -1), -1)[ptr[:total]]
    targets = np.zeros((total, n), dtype=np.uint8)
    has = typ >= 0
    targets[np.flatnonzero(has), n - 1 - typ[has]] = 1
    max_span = np.maximum.reduceat(span, offsets) if total else np.zeros(0, np.int64)
    max_depth = np.maximum.reduceat(depth, offsets) if total else np.zeros(0, np.int64)
    return Annotation(targets, span, depth, offsets, lengths, max_span, max_depth)


def generate_pool(grammar: DyckGrammar, size: int, seed: int, progress=None) -> list[str]:
    """``size`` distinct strings, in order of first appearance, from seeded batches of derivations.

    Raises OptionError when the grammar has fewer than ``size`` distinct strings in range.
    """
    grammar.validate()
    available = grammar.count_strings()
    if available < size:
        raise OptionError(
            f"only {available} distinct Dyck-{grammar.n} strings have {grammar.min_len}..{grammar.max_len} "
            f"characters, fewer than the {size} asked for: raise max_len or ask for fewer sequences",
            param="max_len")
    rng = np.random.default_rng(seed)
    alphabet = _alphabet(grammar.pairs)
    pool: dict[str, None] = {}
    stalls = 0
    while len(pool) < size:
        before = len(pool)
        batch = max(4096, min(200_000, 4 * (size - len(pool))))
        for codes in sample_derivations(grammar, batch, rng):
            pool.setdefault(alphabet[codes].tobytes().decode("ascii"))
            if len(pool) >= size:
                break
        stalls = stalls + 1 if len(pool) == before else 0
        if stalls >= 20:
            raise OptionError(
                f"the grammar produced no new distinct strings in 20 rounds ({len(pool)} of {size}): "
                "change the probabilities or lengths"
            )
        if progress is not None:
            progress(len(pool), size)
    return list(pool)[:size]
