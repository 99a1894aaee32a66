"""The grade cells' side of the notebooks' exercises: checks that the answers they grade cannot fool.

A grade cell runs in the same Python as the student's answer cells, after them, so an answer cell can reassign what
a check relies on (``torch.equal = lambda *a, **k: True``, the library function a check compares with, a name the
set-up cell imported, ``range``). The locked set-up cell of every Exercises section (nbgrader restores it as written)
therefore ends by making a referee, ``_check = Referee(globals())``, which takes a copy of all that before any answer
runs. The hidden tests then go through it:

- ``answer = _check.answer(fn, forbid=[...])`` first puts back what the answers reassigned (``restore``), then gives
  ``fn`` wrapped: each call runs under a watch of the calls it makes (``sys.setprofile``), fails (``NotAllowed``) if
  it reaches a function the exercise asks the student to write, or a package the text rules out (``"einops"``),
  under whatever alias it was called, counts the calls it is asked to (``count=``: say, how many times the frames
  are encoded), and puts everything back again when it returns;
- ``same(got, want)`` and ``close(got, want)`` compare with torch's and NumPy's comparisons as this module imported
  them, and first require what the text asked for: the exact type (a NumPy array, not a list; a float, not a tensor;
  no object whose ``==`` says yes to everything), the same shape (``torch.allclose`` would broadcast a (1,) answer to
  a scalar) and dtype.

What no check inside the same Python can stop: an answer cell that replaces the referee itself (the grader flags an
answer cell that names it), or that changes the set-up's data in place (the hidden tests draw inputs of their own).
The autograded notebook shows every answer cell to the teacher, and README says how to grade in a sandbox.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import torch

# This module's own builtins and comparisons, taken when the set-up cell imports it: an answer cell that later edits
# the builtins module, torch or numpy changes nothing here.
__builtins__ = dict(vars(builtins))
_tensor_equal, _tensor_close, _array_equal, _array_close = torch.equal, torch.allclose, np.array_equal, np.allclose
_set_watch, _get_watch = sys.setprofile, sys.getprofile

# What a check may rely on that an answer can reassign: these modules' and classes' attributes, and every minimodels
# module the set-up imported (the references live there).
_WATCHED = ("builtins", "math", "numpy", "numpy.random", "torch", "torch.nn.functional", "einops")
_CLASSES = (torch.Tensor, torch.nn.Module)


def same(got, want) -> bool:
    """``got`` is the kind of value ``want`` is and equal to it: tensors of the same shape, dtype and values; NumPy
    arrays of the same shape, kind of dtype and values; lists, tuples and dicts item by item; anything else of
    exactly ``want``'s type and equal by that type's own ``==``."""
    if type(got) is not type(want):
        return False
    if isinstance(want, torch.Tensor):
        return got.shape == want.shape and got.dtype == want.dtype and _tensor_equal(got, want)
    if isinstance(want, np.ndarray):
        return got.shape == want.shape and got.dtype.kind == want.dtype.kind and _array_equal(got, want)
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    return type(want).__eq__(want, got) is True


def close(got, want, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    """Like ``same`` for floating-point values: the same type and shape (a float tensor of any float dtype), values
    within ``atol + rtol · |want|``."""
    if type(got) is not type(want):
        return False
    if isinstance(want, torch.Tensor):
        return (got.shape == want.shape and got.is_floating_point()
                and _tensor_close(got.detach().double(), want.detach().double(), rtol=rtol, atol=atol))
    if isinstance(want, np.ndarray):
        return got.shape == want.shape and got.dtype.kind == "f" and _array_close(got, want, rtol=rtol, atol=atol)
    if isinstance(want, float):
        return abs(got - want) <= atol + rtol * abs(want)
    return same(got, want)


class Referee:
    """Made by the set-up cell, last, with the notebook's namespace: everything the checks rely on, as it was."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.present = set(namespace)  # the names there before any answer ran
        self.names = {k: v for k, v in namespace.items() if _imported(v)}  # the set-up's imports, not its data
        self.names["__builtins__"] = namespace.get("__builtins__", builtins)
        self.modules = [m for name, m in sys.modules.items()
                        if name in _WATCHED or name == "minimodels" or name.startswith("minimodels.")]
        self.attributes = {id(owner): (owner, dict(vars(owner))) for owner in [*self.modules, *_CLASSES]}

    same, close = staticmethod(same), staticmethod(close)

    def restore(self) -> None:
        """Put back every attribute of the watched modules and classes, and every name the set-up imported (``np``,
        ``torch``, ``rng``), that an answer reassigned or deleted; drop the names an answer gave to builtins
        (``range = ...``): the checks read Python's own. New attributes and names, and the set-up's data, stay."""
        for owner, saved in self.attributes.values():
            now = vars(owner)
            for name, value in saved.items():
                if now.get(name, _MISSING) is not value:
                    setattr(owner, name, value)
        for name, value in self.names.items():
            if self.namespace.get(name, _MISSING) is not value:
                self.namespace[name] = value
        for name in [n for n in self.namespace if n in _BUILTIN_NAMES and n not in self.present]:
            del self.namespace[name]

    def answer(self, fn, forbid=(), count=None):
        """``fn`` (an answer's function) for the hidden tests: see the module's docstring. ``forbid``: dotted names
        of functions or packages it must not reach; ``count``: {label: function} whose calls each call records in
        ``.calls`` (say, how many times the frames are encoded)."""
        self.restore()
        if not callable(fn):
            raise AssertionError(f"{fn!r} is not a function: define it as the exercise asks")
        forbidden = [_Target(name) for name in forbid]
        counted = {label: _Target(f) for label, f in (count or {}).items()}
        referee = self

        def watched(*args, **kwargs):
            reached, calls = [], Counter()

            def watch(frame, event, arg):
                if event == "call":
                    what = frame.f_code
                elif event == "c_call":
                    what = arg
                else:
                    return
                for target in forbidden:
                    if target.matches(what):
                        reached.append(target.name)
                for label, target in counted.items():
                    if target.matches(what):
                        calls[label] += 1

            previous = _get_watch()
            _set_watch(watch)
            try:
                result = fn(*args, **kwargs)
            finally:
                turned_off = _get_watch() is not watch
                _set_watch(previous)
                referee.restore()
            if turned_off:
                raise NotAllowed(f"{_name(fn)} turned off the grader's watch of its calls (sys.setprofile)")
            if reached:
                raise NotAllowed(f"{_name(fn)} calls {reached[0]}, which this exercise asks you not to use")
            watched.calls = calls
            return result

        watched.calls = Counter()
        return watched


class NotAllowed(AssertionError):
    """An answer used what its exercise rules out: a failed check, which the grader names apart from a wrong result."""


_MISSING = object()
_ROOTS = ("builtins", "math", "numpy", "torch", "einops", "minimodels")
_BUILTIN_NAMES = frozenset(vars(builtins)) - {"__name__", "__doc__", "__package__", "__loader__", "__spec__"}


def _imported(value) -> bool:
    """A module, or a function or class of one of the watched packages: what a set-up cell imports."""
    if isinstance(value, types.ModuleType):
        return True
    if not isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return False
    return (getattr(value, "__module__", None) or "").split(".")[0] in _ROOTS



class _Target:
    """A function, or a package, that the watch looks for: a Python function by its code (whatever name it is
    called by), a C function by identity, a package by the folder of its files."""

    def __init__(self, target):
        self.name = target if isinstance(target, str) else _name(target)
        self.code = self.builtin = self.folder = None
        obj = _resolve(target) if isinstance(target, str) else target
        if isinstance(obj, Path):
            self.folder = str(obj) + os.sep
        elif hasattr(obj, "__code__"):
            self.code = obj.__code__
        else:
            self.builtin = obj

    def matches(self, what) -> bool:
        if self.folder is not None:
            return hasattr(what, "co_filename") and what.co_filename.startswith(self.folder)
        return what is self.code if self.code is not None else what is self.builtin


def _resolve(dotted: str):
    """"package" -> its folder; "package.module.function" -> the function (imported if need be)."""
    spec = importlib.util.find_spec(dotted) if "." not in dotted else None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
