"""What ``tsprobe inspect`` and ``tsprobe timescales`` report about a loaded :class:`RecurrentStack`."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..stack import RecurrentStack

#: Units with a timescale above this many steps count as "long" in summaries.
LONG_T = 10.0


def describe_stack(stack: RecurrentStack) -> dict[str, Any]:
    """Everything ``inspect`` shows: the stack's summary plus one row per layer and the config."""
    info = stack.summary()
    info["source_format"] = info.pop("format")
    info["config"] = dict(stack.config)
    info["mts_spec_full"] = stack.mts_spec
    info["layer_table"] = [
        {
            "layer": k,
            "input_size": layer.input_size,
            "hidden_size": layer.hidden_size,
            "parameters": layer.num_parameters(),
            # the retention gate's (LSTM forget, GRU update); NaN for a plain RNN, which has none
            "forget_bias_median": (float(np.nanmedian(layer.retention_bias.numpy())) if layer.cell.retention_gate
                                   else float("nan")),
            "cell": layer.cell.name,
        }
        for k, layer in enumerate(stack.layers, 1)
    ]
    return info


def timescale_summary(table: pd.DataFrame, long_t: float = LONG_T) -> pd.DataFrame:
    """Per layer and over all units: ``layer, units, T_median, T_max, share_gt_<long_t>, infinite``.

    ``table`` is :meth:`RecurrentStack.timescales_table` (columns ``layer, unit, forget_bias, T_bias``);
    the last row has ``layer = "all"``. Timescales are in time steps, in the table's convention;
    statistics describe the finite ones, ``infinite`` counts the units with T = inf (a saturated
    hard-sigmoid gate) left out of them.
    """
    from ..timescale_math import summarize_timescale_table

    s = summarize_timescale_table(table, column="T_bias", long_t=long_t)  # the one summary, T_-prefixed names here
    out = s[["layer", "units"]].assign(T_median=s["median"], T_max=s["max"])
    out[f"share_gt_{long_t:g}"] = s[f"share_gt_{long_t:g}"]
    out["infinite"] = s["infinite"]
    out.attrs["convention"] = table.attrs.get("convention", "paper")
    return out
