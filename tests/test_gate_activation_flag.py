"""--gate-activation overrides the activation read from (or assumed for) a file, on the commands that
read checkpoints: the timescales follow the hard sigmoid's formula, and the LM commands declare it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from timescale_probe.analyses.checkpoint import TimescalesOptions, run_timescales
from timescale_probe.analyses.lm import EvaluateOptions
from timescale_probe.errors import OptionError

CKPT = Path(__file__).resolve().parents[1] / "checkpoints" / "ptb-baseline-small.pt"


@pytest.mark.skipif(not CKPT.is_file(), reason="shipped checkpoint missing")
def test_timescales_follow_the_override(tmp_path):
    plain = run_timescales(TimescalesOptions(checkpoint=CKPT, out=tmp_path / "a")).table
    hard = run_timescales(TimescalesOptions(checkpoint=CKPT, out=tmp_path / "b",
                                            gate_activation="hard_sigmoid_keras2")).table
    b = hard["forget_bias"].to_numpy(float)
    f = np.clip(0.2 * b + 0.5, 0.0, 1.0)  # Keras 2's hard sigmoid
    with np.errstate(divide="ignore"):
        expected = np.where(f >= 1.0, np.inf, -1.0 / np.log(f))
    np.testing.assert_allclose(hard["T_bias"].to_numpy(float), expected, rtol=1e-5)
    np.testing.assert_allclose(plain["forget_bias"].to_numpy(float), b)  # same biases, another gate
    assert not np.allclose(plain["T_bias"].to_numpy(float), hard["T_bias"].to_numpy(float))


def test_lm_commands_take_the_flag_and_refuse_unknown_values():
    assert EvaluateOptions(checkpoint=CKPT, gate_activation="hard_sigmoid_keras3").gate_activation == "hard_sigmoid_keras3"
    with pytest.raises(OptionError) as err:
        EvaluateOptions(checkpoint=CKPT, gate_activation="relu")
    assert err.value.param == "gate_activation"
