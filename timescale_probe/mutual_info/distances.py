"""The distances of an I(d) curve: a log-spaced grid or an explicit list (``1,2,5,10-20``), and
the names of the standard-error methods. Light (numpy only): options are checked with it before
any corpus is read."""
from __future__ import annotations

import numpy as np

from ..errors import OptionError
from ..validation import check_int

#: standard errors of I(d): delete-one-block jackknife (default) or the delta method
SE_METHODS = ("jackknife", "delta")


def log_distances(max_distance: int = 1000, n: int = 60, min_distance: int = 1) -> np.ndarray:
    """About ``n`` distinct integer distances, log-spaced from ``min_distance`` to ``max_distance``.

    Rounding merges the small distances, so the number of log-spaced points is raised until ``n``
    distinct integers exist (or every integer in the range is used).
    """
    check_int(n, "n", minimum=1)
    check_int(min_distance, "min_distance", minimum=1)
    if check_int(max_distance, "max_distance") < min_distance:
        raise OptionError(f"max_distance must be >= {min_distance} (got {max_distance})", param="max_distance")
    span = max_distance - min_distance + 1
    if span <= n:
        return np.arange(min_distance, max_distance + 1, dtype=np.int64)
    m = n
    while True:
        d = np.unique(np.round(np.logspace(np.log10(min_distance), np.log10(max_distance), m)).astype(np.int64))
        if len(d) >= n:
            return d
        m += 1


def parse_distances(text: str | None, max_distance: int = 1000, n: int = 60) -> np.ndarray:
    """``None`` -> :func:`log_distances`; else a comma list with ranges, e.g. ``1,2,5,10-20``."""
    if text is None or str(text).strip() == "":
        return log_distances(max_distance, n)
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise OptionError(f"distances '{text}': the range {part} runs backwards (write {hi}-{lo})",
                                      param="distances")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise OptionError(f"distances '{text}': cannot read '{part}'; use integers and ranges like "
                              "1,2,5,10-20", param="distances") from None
    if not out:
        raise OptionError(f"distances '{text}' lists no distance", param="distances")
    d = np.unique(np.asarray(out, dtype=np.int64))
    if d[0] < 1:
        raise OptionError(f"distances '{text}': every distance must be >= 1 (got {int(d[0])})", param="distances")
    return d
