"""Every figure, drawn from tidy DataFrames only (no computation inside). One module per area:
``distributions`` (timescale fits, paper Fig. 1), ``lm`` (perplexity tables), ``ablation``
(routing, Fig. 3, gates), ``mi`` (mutual-information decay), ``dyck`` (Fig. 2), ``reproduce``.
Shared style helpers live in ``style``."""
