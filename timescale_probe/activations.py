"""The activations a recurrent cell can have been saved with, by name (numpy and torch).

==========================  ========================================  ==========================================
``sigmoid``                 ``1/(1+exp(-x))``                         PyTorch; Keras >= 2.3 and Keras 3 default
``hard_sigmoid_keras2``     ``clip(0.2*x + 0.5, 0, 1)``               Keras 1/2 and tf.keras ``backend.hard_sigmoid``
                                                                      (keras/backend.py: ``x*0.2 + 0.5`` then
                                                                      ``clip_by_value(x, 0, 1)``); the LSTM/GRU
                                                                      default ``recurrent_activation`` before
                                                                      Keras 2.3 (its release notes: "Change default
                                                                      recurrent activation to sigmoid (from
                                                                      hard_sigmoid) in all RNN layers")
``hard_sigmoid_keras3``     ``clip(x/6 + 0.5, 0, 1)`` = relu6(x+3)/6  Keras 3 ``keras/src/activations``
                                                                      (``ops.hard_sigmoid``; the numpy backend
                                                                      ``x/6 + 0.5`` clipped, the torch backend
                                                                      ``torch.nn.functional.hardsigmoid``)
``tanh``, ``relu``, ``linear``  the usual functions
==========================  ========================================  ==========================================

A file that says ``"hard_sigmoid"`` means the second row when written by Keras 1/2 or tf.keras
(``keras_version`` < 3) and the third when written by Keras 3; the loaders decide by the version.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import OptionError

GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3")
ACTIVATIONS = GATE_ACTIVATIONS + ("tanh", "relu", "linear")
#: slope of each hard sigmoid: f = clip(slope*x + 0.5, 0, 1)
HARD_SIGMOID_SLOPE = {"hard_sigmoid_keras2": 0.2, "hard_sigmoid_keras3": 1.0 / 6.0}


def check_activation(name: str, param: str = "activation", allowed: tuple[str, ...] = ACTIVATIONS) -> str:
    """``name`` if it is one of ``allowed``, else one ``OptionError`` naming ``param``."""
    if name not in allowed:
        raise OptionError(f"unknown {param} '{name}': use one of {', '.join(allowed)}", param=param)
    return name


def activate(name: str, x: Any):
    """``name`` applied to a torch tensor."""
    import torch

    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    if name in HARD_SIGMOID_SLOPE:
        return torch.clamp(x * HARD_SIGMOID_SLOPE[name] + 0.5, 0.0, 1.0)
    if name == "relu":
        return torch.relu(x)
    if name == "linear":
        return x
    check_activation(name)
    raise AssertionError(name)


def activate_np(name: str, x) -> np.ndarray:
    """``name`` applied to a numpy array in float64 (no warnings: NaN in, NaN out)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if name == "tanh":
            return np.tanh(x)
        if name in HARD_SIGMOID_SLOPE:
            return np.clip(x * HARD_SIGMOID_SLOPE[name] + 0.5, 0.0, 1.0)
        if name == "relu":
            return np.maximum(x, 0.0)
        if name == "linear":
            return x
    check_activation(name)
    raise AssertionError(name)
