"""Reading the shared corpora into id streams (counts against shared/corpora/MANIFEST.md), and the
PTB measurement itself (slow)."""
from __future__ import annotations

import numpy as np
import pytest

from timescale_probe.mutual_info import load_token_stream, mi_decay


def test_brown_and_kjv_streams_match_the_manifest(corpora_dir):
    brown = load_token_stream(str(corpora_dir / "brown" / "brown.txt"))
    assert len(brown) == 1161192 + 57340  # ws-tokens + one <eos> per line
    assert brown.n_types == 56057 + 1
    assert int(brown.doc_ids.max()) + 1 == 500  # brown.sentids.txt found beside it: one document per file
    kjv = load_token_stream(str(corpora_dir / "kjv" / "kjv.txt"))
    assert len(kjv) == 789634 + 31102 and kjv.n_types == 28856 + 1
    assert int(kjv.doc_ids.max()) + 1 == 66  # books
    first_book = kjv.tokens[kjv.doc_ids == 0]
    assert np.count_nonzero(first_book == kjv.eos_id) == 1533  # verses of Genesis


def test_wikitext_partial_directory_and_gutenberg(corpora_dir):
    wt2 = load_token_stream(str(corpora_dir / "wikitext-2"))  # no train split: all present splits
    assert len(wt2) == 217646 + 245569
    assert set(np.unique(wt2.doc_ids).tolist()) == {0, 1}
    wap = load_token_stream(str(corpora_dir / "war-and-peace" / "warandpeace.txt"))
    raw = load_token_stream(str(corpora_dir / "war-and-peace" / "warandpeace.txt"), strip_gutenberg=False)
    assert len(raw) == 566308 + 66055
    assert len(wap) < len(raw) - 3000  # the licence header/footer is gone
    assert "Gutenberg" not in " ".join(wap.vocab[i] for i in wap.tokens[:200])


@pytest.mark.slow
def test_ptb_mi_has_a_power_law_tail(corpora_dir):
    s = load_token_stream(str(corpora_dir / "ptb"), splits=["train"])
    r = mi_decay(s.tokens, n_types=s.n_types, n_resamples=3, seed=0)
    assert r.summary["tail"] == "power"
    assert 0.1 < r.summary["a"] < 1.5
