"""Config plumbing shared by every model family: `--set key=value` overrides with type checks.

Each model and experiment keeps its own dataclass (``VideoViTConfig``, ``Stage1Config``, ...); this module only
knows how to change a dataclass safely from strings, so the notebook's config cell and the command line take the same
path. Errors name the bad key or value and list the valid choices.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

from .errors import ConfigError

# Keys that were renamed: a config given the old name is refused with the new one in the message.
RENAMED = {"activation_checkpointing": "recompute_activations", "gradient_checkpointing": "recompute_activations"}


def _parse(text: str, kind: Any, key: str) -> Any:
    """Turn the string ``text`` into a value of type ``kind`` (int, float, bool, str, Optional[...], tuple)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if type(None) in options and text.lower() in ("none", "null"):
            return None
        inner = [o for o in options if o is not type(None)]
        return _parse(text, inner[0], key)
    if origin is tuple:
        inner = typing.get_args(kind)[0]
        return tuple(_parse(part, inner, key) for part in text.strip("()[] ").split(",") if part.strip())
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}={text!r}: expected a boolean (true/false/1/0)")
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{key}={text!r}: expected {kind.__name__}") from None
        return value
    if kind is str:
        return text
    raise ConfigError(f"{key}: cannot set a field of type {kind} from the command line")


def _check_type(value: Any, kind: Any, key: str) -> Any:
    """Check a Python value (not a string) against the field type; ints are accepted for floats."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            try:
                return _check_type(value, option, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}={value!r}: expected {kind}")
    if kind is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}={value!r}: expected None")
    if origin is tuple:
        if isinstance(value, (tuple, list)):
            return tuple(value)
        raise ConfigError(f"{key}={value!r}: expected a tuple")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        raise ConfigError(f"{key}: expected a {kind.__name__}")
    if isinstance(kind, type) and not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{key}={value!r}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def override(cfg: Any, changes: dict[str, Any] | None = None, _prefix: str = "", **kwargs: Any) -> Any:
    """Return a copy of dataclass ``cfg`` with ``changes`` applied.

    Values may be strings (from ``--set key=value``) or Python values (from a notebook). A dotted key such as
    ``model.width`` reaches into a nested config. Unknown keys and wrongly typed values raise ``ConfigError``.
    """
    changes = {**(changes or {}), **kwargs}
    hints = typing.get_type_hints(type(cfg))
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        full = _prefix + key
        if head not in hints and head in RENAMED and RENAMED[head] in hints:
            raise ConfigError(f"{full!r} is now called {_prefix + RENAMED[head]!r}: use that key")
        if head not in hints:
            valid = ", ".join(sorted(hints))
            raise ConfigError(f"unknown config key {full!r} for {type(cfg).__name__}; valid keys: {valid}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        elif isinstance(value, str) and hints[head] is not str:
            direct[head] = _parse(value, hints[head], full)
        else:
            direct[head] = _check_type(value, hints[head], full)
    for head, sub in nested.items():
        direct[head] = override(getattr(cfg, head), sub, _prefix=f"{_prefix}{head}.")
    try:
        return dataclasses.replace(cfg, **direct)  # a config's own checks (``__post_init__``) run here
    except ConfigError as err:  # name the key as it was typed: "qa_stage.lr=inf: ..."
        raise ConfigError(f"{_prefix}{err}") from None


def whole(value, least: int = 1) -> bool:
    """An int (not a bool) of at least ``least``: what a count of layers, steps or frames must be."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def require(cfg, rules: dict[str, tuple[bool, str]]) -> None:
    """A config's checks of its own fields, made when it is constructed (its ``__post_init__``), so that a bad
    setting never starts a run: ``{field: (holds, what it must be)}``; the first that does not hold is refused in
    one line naming the field and its value (``override`` puts the key's prefix in front, as it was typed)."""
    for name, (holds, want) in rules.items():
        if not holds:
            raise ConfigError(f"{name}={getattr(cfg, name)!r}: must be {want}")


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "model.width=64"]`` -> ``{"a": "1", "model.width": "64"}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def to_json(cfg: Any) -> str:
    return json.dumps({"class": type(cfg).__name__, **to_dict(cfg)}, indent=2, sort_keys=True)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (possibly nested) config dataclass from ``to_dict`` output, checking every key."""
    data = {k: v for k, v in data.items() if k != "class"}
    hints = typing.get_type_hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} for {cls.__name__}; valid keys: {', '.join(sorted(hints))}")
    values = {}
    for key, value in data.items():
        kind = hints[key]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(value, dict):
            values[key] = from_dict(kind, value)
        else:
            values[key] = _check_type(value, kind, key)
    return cls(**values)
