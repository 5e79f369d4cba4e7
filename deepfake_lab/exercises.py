"""The exercises at the end of each lesson notebook: an answer starts empty, a check says how it does.

An exercise cell reads::

    my_loss = ...                                   # <- your answer
    my_loss = answer("02", "ex1_lsgan_d_loss", my_loss, s_real, s_fake)
    check("exercise 1", my_loss, expected)

or, when the answer is a function, ``def swap_to_A(faces): ...`` and ``check(..., args=(x,))``.

* :func:`check` prints *not yet* while the answer is still ``...`` (no exception: the notebook runs on),
  *correct* when it matches the expected value, and *not quite: got X, expected Y* when it does not.
* :func:`answer` hands back the student's answer unchanged, except when the notebook runs as a test. Then an
  empty answer is replaced by the reference solution of the same name in ``notebooks/solutions/<lesson>_*.py``
  (a function of the notebook's values that the cell passes along), and a wrong answer raises
  ``AssertionError`` so that the cell fails.

A notebook runs as a test with ``DEEPFAKE_LAB_SOLUTIONS=1``, or in quick mode (``DEEPFAKE_LAB_QUICK=1``, how
``make test`` and CI run the notebooks) unless ``DEEPFAKE_LAB_SOLUTIONS=0``.
"""
from __future__ import annotations

import functools
import os
import runpy
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

SOLUTIONS_DIR = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"  # beside the package, not the cwd
_OFF = ("", "0", "false", "False")


def solutions_requested() -> bool:
    """True when empty answers get the reference solutions: ``DEEPFAKE_LAB_SOLUTIONS``, else quick mode."""
    chosen = os.environ.get("DEEPFAKE_LAB_SOLUTIONS")
    if chosen is not None and chosen != "":
        return chosen not in _OFF
    return os.environ.get("DEEPFAKE_LAB_QUICK", "") not in _OFF


# --------------------------------------------------------------------------------------------
# Empty answers: ``...``, or a function whose body is only ``...``
# --------------------------------------------------------------------------------------------
def _empty_body(): ...


def _empty_body_with_docstring():
    """A docstring, then ``...``."""
    ...


_EMPTY_CODES = {_empty_body.__code__.co_code, _empty_body_with_docstring.__code__.co_code}


def is_empty(value: Any) -> bool:
    """True for ``...`` and for a function that does nothing yet (its body is ``...``, maybe after a docstring)."""
    if value is Ellipsis:
        return True
    code = getattr(value, "__code__", None) if isinstance(value, types.FunctionType) else None
    return code is not None and code.co_code in _EMPTY_CODES and not code.co_names


# --------------------------------------------------------------------------------------------
# The reference solutions
# --------------------------------------------------------------------------------------------
def solutions_file(lesson: str) -> Path:
    """``notebooks/solutions/<lesson>_*.py`` for ``lesson`` "01" ... "05"."""
    found = sorted(SOLUTIONS_DIR.glob(f"{lesson}_*.py"))
    if len(found) != 1:
        what = "no file" if not found else f"{len(found)} files ({', '.join(p.name for p in found)})"
        raise FileNotFoundError(f"solutions of lesson {lesson!r}: {what} matching {lesson}_*.py in {SOLUTIONS_DIR}; "
                                "the solutions ship with the repository (an editable install finds them), "
                                "not with an installed wheel")
    return found[0]


def load_solutions(lesson: str) -> types.SimpleNamespace:
    """The solutions file of ``lesson``, run as a script: its names (one function per exercise answer)."""
    path = solutions_file(lesson)
    names = runpy.run_path(str(path), run_name=f"deepfake_lab_solutions_{lesson}")
    return types.SimpleNamespace(**{k: v for k, v in names.items() if not k.startswith("__")})


def solution(lesson: str, name: str) -> Callable:
    """The reference solution ``name`` of ``lesson``: a function of the values the notebook cell passes along."""
    module = load_solutions(lesson)
    found = getattr(module, name, None)
    if not callable(found):
        raise LookupError(f"{solutions_file(lesson)}: no solution function {name!r}; "
                          f"it has {sorted(n for n in vars(module) if n.startswith('ex'))}")
    return found


def answer(lesson: str, name: str, value: Any, *context: Any) -> Any:
    """``value`` (the student's answer), or, when it is empty and solutions are requested, the reference solution.

    ``context``: the notebook's values the solution ``name`` needs. For an answer that is a value, the result is
    ``solution(*context)``; for an answer that is a function, it is that function with ``context`` bound to its
    first arguments (``solution(*context, *its own arguments)``).
    """
    if not is_empty(value) or not solutions_requested():
        return value
    reference = solution(lesson, name)
    print(f"(the reference solution {name} from notebooks/solutions/{solutions_file(lesson).name}, filled in "
          "because quick mode or DEEPFAKE_LAB_SOLUTIONS=1 asks for it)")
    if value is Ellipsis:
        return reference(*context)
    return functools.partial(reference, *context) if context else reference


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------
def _is_integral(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, np.integer)):
        return True
    if isinstance(x, (tuple, list)):
        return len(x) > 0 and all(_is_integral(v) for v in x)
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "iu"
    if isinstance(x, torch.Tensor):
        return not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool)
    return False


def _as_array(x: Any) -> np.ndarray | None:
    """``x`` as float64 numbers, or None when it is not numbers (then it is compared with ``==``)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    if isinstance(x, (tuple, list)):
        parts = [_as_array(v) for v in x]
        if any(p is None for p in parts):
            return None
        try:
            return np.stack(parts) if parts else np.zeros(0)
        except ValueError:  # parts of different shapes
            return None
    if isinstance(x, (bool, np.bool_)):
        return None
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def _describe(x: Any) -> str:
    """A short text for a value: numbers in full, small tensors and arrays as lists, large ones by shape."""
    if x is None or isinstance(x, (bool, np.bool_)):
        return repr(x)
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    if isinstance(x, (tuple, list)) and len(x) <= 8:
        inner = ", ".join(_describe(v) for v in x)
        return (f"({inner},)" if len(x) == 1 else f"({inner})") if isinstance(x, tuple) else f"[{inner}]"
    array = _as_array(x)
    if array is None:
        text = repr(x)
        return text if len(text) <= 80 else text[:77] + "..."
    if array.ndim == 0:
        return f"{int(array):,}" if _is_integral(x) else f"{float(array):.6g}"
    kind = "tensor" if isinstance(x, torch.Tensor) else "array"
    if array.size <= 10:
        numbers = np.array2string(array, precision=4, separator=", ", suppress_small=True, max_line_width=10**6)
        return f"{kind} {numbers}"
    return f"{'a tensor' if kind == 'tensor' else 'an array'} of shape {tuple(array.shape)}"


def _compare(value: Any, expected: Any, atol: float | None, rtol: float | None) -> tuple[bool, str]:
    """(matches, what differs)."""
    if isinstance(expected, (bool, np.bool_)) or isinstance(value, (bool, np.bool_)):
        return bool(value == expected), ""
    v, e = _as_array(value), _as_array(expected)
    if v is None or e is None:
        try:
            return bool(value == expected), ""
        except Exception:  # noqa: BLE001 - a comparison that fails is a mismatch
            return False, ""
    if v.shape != e.shape:
        return False, f"shape {tuple(v.shape)}, expected shape {tuple(e.shape)}"
    if atol is None and rtol is None and _is_integral(expected):
        if np.array_equal(v, e):
            return True, ""
        return False, "" if e.size == 1 else f"{int((v != e).sum())} of {e.size} numbers differ"
    atol = 1e-6 if atol is None else atol
    rtol = 1e-5 if rtol is None else rtol
    if np.allclose(v, e, rtol=rtol, atol=atol):
        return True, ""
    if e.size == 1:
        return False, ""
    diff = np.abs(v - e)
    where = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
    return False, (f"largest difference {float(diff[where]):.3g} at index {tuple(int(i) for i in where)}, "
                   f"allowed {atol:g} + {rtol:g} x |expected|")


def check(label: str, value: Any, expected: Any, *, args: tuple | None = None, atol: float | None = None,
          rtol: float | None = None, hint: str = "") -> bool:
    """Print how the answer ``value`` does against ``expected``; True when it matches.

    ``args``: the answer is a function; call it with these and compare its result. Numbers, tensors and arrays
    match within ``atol + rtol * |expected|`` (default 1e-6 and 1e-5); an integer expected value must be met
    exactly unless a tolerance is given. ``hint`` is shown when the answer is wrong. While solutions are
    requested (the notebook runs as a test) a wrong or empty answer raises ``AssertionError`` instead.
    """
    if is_empty(expected):
        raise TypeError(f"{label}: the expected value is itself empty (`...`); the check needs a real value")
    if is_empty(value):
        if solutions_requested():
            raise AssertionError(f"{label}: the answer is still empty (`...`) although solutions are requested; "
                                 "pass it through exercises.answer(...) before the check")
        print(f"{label}: not yet: fill in the answer above (it is still `...`) and run this cell again.")
        return False
    if args is not None:
        name = getattr(value, "__name__", None) or getattr(getattr(value, "func", None), "__name__", "the function")
        value = value(*args)
        if value is None:
            return _wrong(label, f"{name} returned None: does it `return` its result?", hint)
    ok, detail = _compare(value, expected, atol, rtol)
    if ok:
        print(f"{label}: correct: {_describe(value)}")
        return True
    message = f"not quite: got {_describe(value)}, expected {_describe(expected)}"
    return _wrong(label, f"{message}; {detail}" if detail else message, hint)


def _wrong(label: str, message: str, hint: str) -> bool:
    text = f"{label}: {message}." + (f" Hint: {hint.rstrip('.')}." if hint else "")
    if solutions_requested():
        raise AssertionError(text + " (solutions are requested, so every check must pass)")
    print(text + " Change your answer and run this cell again.")
    return False
