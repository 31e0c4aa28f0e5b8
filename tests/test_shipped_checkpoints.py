"""The shipped checkpoints (``checkpoints/*.pt``) still give the numbers their model cards recorded
when they were trained (on whatever device trained them)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import ROOT, one_thread_fixture  # noqa: F401 - the one_thread fixture

from timescale_probe.corpora import load_corpus
from timescale_probe.evaluation import head_perplexity, token_nll
from timescale_probe.models import load_language_model

CARDS = sorted((ROOT / "checkpoints").glob("*.json"))


def _card_and_model(card_path):
    card = json.loads(card_path.read_text())
    ckpt = card_path.with_suffix(".pt")
    if not ckpt.is_file():
        pytest.skip(f"{ckpt.name} not shipped")
    if card["corpus"] != "ptb":
        pytest.skip(f"{card_path.name}: corpus {card['corpus']!r} is not embedded (only ptb is)")
    _, model, corpus = load_language_model(ckpt, load_corpus("ptb"))
    return card, model, corpus


def test_checkpoints_are_shipped():
    assert {c.stem for c in CARDS} >= {"ptb-baseline-small", "ptb-mts-small"}


@pytest.mark.parametrize("card_path", CARDS, ids=[c.stem for c in CARDS])
def test_head_perplexity_matches_the_model_card(card_path, one_thread):
    card = json.loads(card_path.read_text())
    if "test_ppl_head" not in card:
        pytest.skip(f"{card_path.name} predates test_ppl_head (the slow test checks its full test perplexity)")
    card, model, corpus = _card_and_model(card_path)
    head = card["test_ppl_head"]
    # cards written on a GPU: float32 kernels differ from the CPU's in the last digits
    assert head_perplexity(model, corpus, head["tokens"], bptt=card["train_config"]["bptt"]) == pytest.approx(
        head["ppl"], rel=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize("card_path", CARDS, ids=[c.stem for c in CARDS])
def test_full_test_perplexity_matches_the_model_card(card_path, one_thread):
    """The whole PTB test split, batch 1 (about 35 s per small model on one core)."""
    card, model, corpus = _card_and_model(card_path)
    assert card["test_batch_size"] == 1
    nll, _ = token_nll(model, corpus.tokens("test"), batch_size=1, bptt=card["train_config"]["bptt"])
    assert float(np.exp(nll.mean())) == pytest.approx(card["test_ppl"], rel=2e-3)
