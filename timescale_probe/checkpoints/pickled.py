"""Whole-model pickles (AWD-LSTM / the reference repo, pytorch/examples ``word_language_model``) read as
inert object trees (:mod:`.safe_unpickle`), flattened into state-dict names, and described.

An ``nn.Module`` stand-in keeps the pickled ``__dict__``: ``_parameters``, ``_buffers``,
``_modules`` and plain attributes. :func:`flatten` turns a tree into ``state_dict()``-style names
(``rnns.0.module.weight_hh_l0_raw``); plain tensor attributes are included as well (AWD's
DropConnect leaves the last dropped ``weight_hh_l0`` there). Optimizers are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .safe_unpickle import InertObject, is_inert

_MAX_DEPTH = 64
_HYPERPARAMETERS = ("rnn_type", "ntoken", "ninp", "nhid", "nlayers", "dropout", "dropouti", "dropouth", "dropoute",
                    "tie_weights")


def _is_module(obj: Any) -> bool:
    return is_inert(obj) and ("_parameters" in obj.attributes or "_modules" in obj.attributes)


def _is_optimizer(obj: Any) -> bool:
    return is_inert(obj) and obj.tsprobe_module.startswith("torch.optim")


@dataclass
class Flattened:
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    modules: list[tuple[str, InertObject]] = field(default_factory=list)   # (dotted path, stand-in), pre-order


def flatten(obj: Any, prefix: str = "", out: Flattened | None = None, _seen: set | None = None, _depth: int = 0) -> Flattened:
    """State-dict-style names for every tensor reachable from ``obj`` through modules, dicts and lists."""
    out = Flattened() if out is None else out
    seen = set() if _seen is None else _seen
    if _depth > _MAX_DEPTH:
        return out
    if isinstance(obj, torch.Tensor):
        name = prefix[:-1] if prefix.endswith(".") else prefix
        out.tensors.setdefault(name, obj)
        return out
    if isinstance(obj, (dict, list, tuple, InertObject)):
        if id(obj) in seen:
            return out
        seen.add(id(obj))
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)) and not isinstance(k, bool):
                flatten(v, f"{prefix}{k}.", out, seen, _depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}{i}.", out, seen, _depth + 1)
    elif _is_module(obj):
        out.modules.append((prefix[:-1], obj))
        attrs = obj.attributes
        for group in ("_parameters", "_buffers"):
            d = attrs.get(group)
            if isinstance(d, dict):
                for k, v in d.items():
                    if isinstance(k, str) and isinstance(v, torch.Tensor):
                        out.tensors.setdefault(prefix + k, v)
        for k, v in attrs.items():
            if isinstance(k, str) and not k.startswith("_") and isinstance(v, torch.Tensor):
                out.tensors.setdefault(prefix + k, v)
        mods = attrs.get("_modules")
        if isinstance(mods, dict):
            for k, v in mods.items():
                if isinstance(k, str) and v is not None:
                    flatten(v, f"{prefix}{k}.", out, seen, _depth + 1)
    elif is_inert(obj) and not _is_optimizer(obj):
        if obj.tsprobe_module.split(".")[0] == "__torch__":  # a TorchScript module: parameters are attributes
            out.modules.append((prefix[:-1], obj))
        for k, v in obj.attributes.items():
            if isinstance(k, str) and not k.startswith("_"):
                flatten(v, f"{prefix}{k}.", out, seen, _depth + 1)
        if obj.tsprobe_setitems:
            flatten(dict(obj.tsprobe_setitems), prefix, out, seen, _depth + 1)
    return out


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


@dataclass
class ModelDescription:
    source_format: str                 # "pickle:awd-lstm" | "pickle:word_language_model" | "pickle:module"
    model_class: str | None
    config: dict[str, Any]
    notes: list[str]


def describe_model(root: Any, flat: Flattened, lstm_prefix: str) -> ModelDescription:
    """Which kind of pickled model this is, and the hyperparameters its stand-ins recorded."""
    modules = flat.modules
    model = next((m for path, m in modules if m is root), None) or (modules[0][1] if modules else None)
    classes = {m.tsprobe_name for _, m in modules}
    notes: list[str] = []
    config: dict[str, Any] = {}
    model_class = model.tsprobe_class if model is not None else None
    attrs = model.attributes if model is not None else {}
    submods = attrs.get("_modules") if isinstance(attrs.get("_modules"), dict) else {}
    weight_drops = [m for _, m in modules if m.tsprobe_name == "WeightDrop"]
    if weight_drops or "rnns" in submods or lstm_prefix.startswith("rnns."):
        source, config["arch"] = "pickle:awd-lstm", "awd-lstm"
    elif model is not None and "rnn" in submods and ("encoder" in submods or "decoder" in submods):
        source, config["arch"] = "pickle:word_language_model", "word_language_model"
    else:
        source = "pickle:module"
        config["arch"] = model.tsprobe_name if model is not None else "unknown"
    if model_class:
        config["class"] = model_class
    for key in _HYPERPARAMETERS:
        if key in attrs and _scalar(attrs[key]):
            config[key] = attrs[key]
    if weight_drops:
        wd = weight_drops[0].attributes
        if _scalar(wd.get("dropout")):
            config["wdrop"] = wd.get("dropout")
        if isinstance(wd.get("variational"), bool):
            config["wdrop_variational"] = wd["variational"]
    drop = submods.get("drop")
    if "dropout" not in config and is_inert(drop) and isinstance(drop.attributes.get("p"), (int, float)):
        config["dropout"] = drop.attributes["p"]
    if "WeightDrop" in classes:
        notes.append("AWD-LSTM DropConnect (weight_drop.WeightDrop) around each recurrent layer")
    return ModelDescription(source, model_class, config, notes)
