"""Vocabularies of checkpoints that carry none: the candidate orders (train-only, reference) and
matching a checkpoint's vocabulary, or its size, to a corpus."""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import CorpusError
from .corpus import VOCAB_ORDERS, Corpus
from .text import SPLITS, UNK, lines_to_words


def train_order_vocab(split_lines: dict[str, Sequence[str]]) -> list[str]:
    """Tokens of the train split in first-occurrence order, ``<unk>`` appended when valid/test hold
    words train lacks and train has no ``<unk>`` (what :func:`load_corpus` builds)."""
    vocab = list(dict.fromkeys(lines_to_words(split_lines["train"])))
    known = set(vocab)
    if UNK not in known and any(w not in known for s in ("valid", "test") for w in lines_to_words(split_lines[s])):
        vocab.append(UNK)
    return vocab


def reference_order_vocab(split_lines: dict[str, Sequence[str]]) -> list[str]:
    """The reference's ``data.Corpus`` dictionary: first occurrence over train, then valid, then test
    (``line.split() + ['<eos>']`` per line). Equals the train-only order on closed vocabularies (PTB)."""
    return list(dict.fromkeys(w for s in SPLITS for w in lines_to_words(split_lines[s])))


def vocab_candidates(corpus: Corpus) -> dict[str, list[str]]:
    """``{order: vocabulary}`` for every order of :data:`VOCAB_ORDERS` (train-only, reference)."""
    train = list(corpus.vocab) if corpus.vocab_info.get("order") == "train" else train_order_vocab(corpus.split_lines_)
    return {"train": train, "reference": reference_order_vocab(corpus.split_lines_)}


def match_model_vocabulary(corpus: Corpus, vocab: Sequence[str] | None, vocab_size: int | None, where: str, *,
                           unk_fallback: bool = False) -> Corpus:
    """Return ``corpus`` tokenised to match a model (``where`` names it in messages).

    - The model has a vocabulary: the same words (in any order) re-tokenise the corpus with the
      model's ids. Other words are a CorpusError, unless ``unk_fallback`` and the model has
      ``<unk>``: then the corpus is re-tokenised with the model's vocabulary and its unknown words
      map to ``<unk>`` (e.g. a Markov resample of the training text drawn again).
    - The model has none (foreign checkpoints): with a vocabulary file, its size must equal the
      model's output size. Otherwise every order of :func:`vocab_candidates` is tried and the one
      whose size equals ``vocab_size`` is used; none or several matching is a one-line CorpusError
      listing each candidate's size.

    ``Corpus.vocab_info`` of the result says which vocabulary was used (and the candidates' sizes).
    The input corpus is never modified.
    """
    if vocab is not None:
        vocab = list(vocab)
        info = {"order": "checkpoint", "matched": where}
        if vocab == corpus.vocab:
            return _with_info(corpus, info)
        if len(vocab) == len(corpus.vocab) and set(vocab) == set(corpus.vocab):
            return corpus.with_vocab(vocab, f"re-tokenised with the vocabulary of {where}",
                                     {**info, "detail": "same words as the corpus, another order"})
        if unk_fallback and UNK in vocab:
            out = corpus.with_vocab(vocab, f"re-tokenised with the vocabulary of {where}", info)
            detail = f"corpus words it lacks map to {UNK}: " + ", ".join(f"{s} {n}" for s, n in out.oov.items())
            out.vocab_info["detail"] = detail
            out.notes.append(f"the corpus was re-tokenised with the vocabulary of {where}; out-of-vocabulary "
                             f"tokens mapped to {UNK}: test {out.oov['test']}")
            return out
        extra = [w for w in corpus.vocab if w not in set(vocab)][:3]
        raise CorpusError(
            f"vocabulary mismatch: {where} has {len(vocab)} words, corpus {corpus.name} {len(corpus.vocab)}"
            + (f" (corpus words not in the model: {', '.join(extra)})" if extra else "")
            + "; evaluate on the corpus the model was trained on"
        )
    if vocab_size is None:
        return corpus
    if corpus.vocab_info.get("order") == "file":
        if vocab_size != len(corpus.vocab):
            raise CorpusError(
                f"vocabulary mismatch: {where} has {vocab_size} output words but the vocabulary file "
                f"{corpus.vocab_info.get('path', '')} gives {len(corpus.vocab)}; use the vocabulary the model was trained with"
            )
        return _with_info(corpus, {**corpus.vocab_info, "matched": where})
    cands = vocab_candidates(corpus)
    sizes = {o: len(v) for o, v in cands.items()}
    same = {o: cands[o] == cands["train"] for o in cands if o != "train"}
    distinct = {o: v for o, v in cands.items() if o == "train" or not same[o]}
    matching = [o for o, v in distinct.items() if len(v) == vocab_size]
    listing = ", ".join(f"{VOCAB_ORDERS[o].split(' (')[0]} {n:,}" for o, n in sizes.items())
    if len(matching) != 1:
        why = "none matches" if not matching else "several match, so the word order is ambiguous"
        raise CorpusError(
            f"vocabulary mismatch: {where} has {vocab_size:,} output words and no vocabulary; corpus {corpus.name} "
            f"gives {listing} words ({why}); use the corpus it was trained on, or give its vocabulary file (vocab_file, --vocab-file)"
        )
    order = matching[0]
    info = {"order": order, "matched": where, "candidates": sizes, "same_as": same}
    if cands[order] == corpus.vocab:
        out = _with_info(corpus, info)
    else:
        out = corpus.with_vocab(cands[order], "", info)
        out.notes.pop()
    out.notes.append(f"{where} has no vocabulary: used the {VOCAB_ORDERS[order]}, {sizes[order]:,} words, the size "
                     f"of its decoder (candidates: {listing})")
    return out


def _with_info(corpus: Corpus, info: dict[str, Any]) -> Corpus:
    """A shallow copy of ``corpus`` (token tensors shared) with other ``vocab_info`` and its own notes."""
    import copy

    out = copy.copy(corpus)
    out.notes = list(corpus.notes)
    out.vocab_info = {**info, "size": len(corpus.vocab)}
    return out


def check_vocab_compatible(corpus: Corpus, vocab: Sequence[str] | None, vocab_size: int | None, where: str, *,
                           unk_fallback: bool = False) -> Corpus:
    """Former name of :func:`match_model_vocabulary` (kept for existing callers)."""
    return match_model_vocabulary(corpus, vocab, vocab_size, where, unk_fallback=unk_fallback)
