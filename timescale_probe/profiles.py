"""One profile pattern: a named, frozen bundle of settings, looked up in a registry.

A profile is a budget or a scale of an experiment ("paper", "small", "tiny"): a frozen dataclass
deriving from :class:`Profile` (its ``name`` and a one-line ``description`` first, then the
settings as typed fields), registered in a :class:`ProfileRegistry`::

    @dataclass(frozen=True)
    class DyckProfile(Profile):
        units: int
        epochs: int
        seeds: int

    DYCK_PROFILES = ProfileRegistry("Dyck training profile", [
        DyckProfile("paper", "the paper's run (a GPU)", units=256, epochs=2000, seeds=20),
        DyckProfile("tiny", "seconds, for tests", units=16, epochs=2, seeds=2),
    ])
    DYCK_PROFILES["paper"].units            # 256
    DYCK_PROFILES.check("huge")             # OptionError(param="profile"): use paper or tiny

Used by :mod:`timescale_probe.training` (language-model profiles), :mod:`timescale_probe.dyck.train`
and the profiles of ``tsprobe reproduce`` and ``theory``. A profile only holds settings; what a
profile *means* for a run (e.g. a WikiText variant of the LM "paper" profile) is a method of its
class, so every caller resolves it the same way. An options field names its profile with
``option(..., check=REGISTRY.check)`` and its help lists the profiles with :meth:`ProfileRegistry.help`.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Generic, Iterable, Iterator, Mapping, TypeVar

from .errors import OptionError

__all__ = ["Profile", "ProfileRegistry", "frozen_mapping"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """Base of every profile: ``name`` (what ``--profile`` takes) and a one-line ``description``."""

    name: str
    description: str

    def settings(self) -> dict[str, Any]:
        """The settings (every field but ``name`` and ``description``) as a plain dict."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("name", "description")}

    def to_dict(self) -> dict[str, Any]:
        """The whole profile as JSON-able data (what ``run.json`` records)."""
        return {"name": self.name, "description": self.description, **self.settings()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def frozen_mapping(data: Mapping[str, Any] | None = None, **kw: Any) -> Mapping[str, Any]:
    """A read-only mapping for a profile field that is a group of settings (e.g. the ``LMConfig``
    fields of a language-model profile), so a profile cannot be changed by the code that reads it."""
    return MappingProxyType(dict(data or {}, **kw))


P = TypeVar("P", bound=Profile)


class ProfileRegistry(Generic[P]):
    """The profiles of one kind, by name, in the order given (the first is not a default: the
    options that take a profile declare their own default)."""

    def __init__(self, what: str, profiles: Iterable[P], *, param: str = "profile") -> None:
        self.what, self.param = what, param
        self._profiles: dict[str, P] = {}
        for p in profiles:
            if p.name in self._profiles:
                raise ValueError(f"{what} '{p.name}' registered twice")
            self._profiles[p.name] = p

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._profiles)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def values(self) -> list[P]:
        return list(self._profiles.values())

    def check(self, name: str) -> str:
        """``name`` if it is a registered profile, else one ``OptionError`` listing them (an
        options field's ``check``)."""
        if name not in self._profiles:
            names = list(self._profiles)
            listed = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]
            raise OptionError(f"unknown {self.param} '{name}': use {listed}", param=self.param)
        return name

    def __getitem__(self, name: str) -> P:
        return self._profiles[self.check(name)]

    def help(self) -> str:
        """``paper (the paper's run), small (...), tiny (...)``: for an option's help text."""
        return ", ".join(f"{p.name} ({p.description})" for p in self._profiles.values())
