"""Meshline's jq engine: a subset of jq compiled to Python closures, jq.py for the rest.

jq.py (libjq bindings) costs tens of microseconds per call because it serialises every input
to JSON text and parses every output back; the same logic as Python closures costs one to a few
microseconds. :func:`compile_jq` therefore

1. compiles every program with ``jq.compile`` first, so syntax errors and unknown functions
   are always jq's own (:class:`JqCompileError`), and keeps that program for fallback;
2. parses it with the native parser (:mod:`meshline.transforms.jqc.parser`) and compiles it
   to closures (:mod:`meshline.transforms.jqc.compiler`) when the *whole* program is inside
   the native subset -- otherwise the whole program runs on jq.py;
3. at run time, when the native evaluator meets a case it cannot reproduce exactly (a number
   whose printed form depends on libjq's literal tracking, ``nan``/infinities, a string that
   only libjq can parse, very deep input, ...) it abandons the native run and re-runs the
   program on jq.py (inputs are never mutated, so this is always safe).

Native subset (everything else falls back): ``.``, ``..``, ``.foo``, ``."foo"``, ``.[e]``,
``.[e:e]``, ``.[]``, optional ``?`` forms, ``|``, ``,``, parentheses, literals, strings with
``\\(...)`` interpolation, ``[...]``, ``{...}`` (all key forms but ``$__loc__``), arithmetic,
comparisons, ``and``/``or``/``not``, ``//``, ``if/elif/else/end`` (else optional), ``try E``
without ``catch``, ``E as $x | ...``, ``$x``, ``reduce``/``foreach`` with a ``$x`` pattern,
assignments ``=``, ``|=``, ``+=``, ``-=``, ``*=``, ``/=``, ``%=``, ``//=`` on path expressions
(``.a``, ``.[e]``, ``.[]``, ``?``, ``|``, ``,``, ``if``, ``select``, ``first``, ``last``,
``..``, ``empty``, type selectors), and the builtins ``empty error/0,1 select map
map_values to_entries from_entries with_entries add/0,1 any/0,1,2 all/0,1,2 length
utf8bytelength keys keys_unsorted has in inside contains startswith endswith ltrimstr rtrimstr
trimstr trim ltrim rtrim split/1 join ascii_downcase ascii_upcase explode implode tostring
tojson fromjson tonumber toboolean type floor ceil sqrt fabs abs min max min_by max_by unique
unique_by sort sort_by group_by reverse flatten/0,1 first/0,1 last/0,1 nth/1 isempty
recurse/0,1,2 values nulls booleans numbers strings arrays objects iterables scalars del``.
Not native: ``def``, ``label``, ``try ... catch``, ``?//``, destructuring, ``$__loc__``, ``$ENV``,
``@formats``, regex functions, paths/getpath/setpath, ``limit``, ``range``, ``input``, dates,
slice assignment, ...

Semantics are libjq 1.8's, checked against jq.py: outputs equal
``jq.compile(p).input_value(v).all()`` and libjq's error messages, with one deliberate
difference in number *types*. Like the ``jq`` command since 1.7, a number the program passes
through unchanged (from the input or written in the program) keeps its form: ``1.0`` stays the
float ``1.0``, an integer beyond 2**53 stays exact. jq.py instead turns every integral number
into an ``int`` (after a trip through a double), which needs a walk over every output (about
3 µs for a 1 KiB event, a fifth of a whole B1 pipeline) and changes the type of a field that
happens to hold ``10.0``. Computed numbers are as jq.py gives them when integral within 2**53
(``int``); beyond, they stay ``float`` (the ``jq`` command prints ``1e+300``). Programs (or
runs) answered by the jq.py fallback keep jq.py's types.
libjq quirks are mirrored (``//`` does not catch errors, ``ltrimstr`` errors on non-strings,
a second ``reduce`` init value iterates its source over ``null``, ``.[1:] == .[:1]`` compares
slice storage, ...). Inputs are JSON values as ``orjson.loads`` makes them (string keys,
finite floats). Outputs may share unchanged sub-structures with the input and with each other;
treat them as read-only (updates such as ``.a.b = 1`` copy only the containers along the path,
never the input).

The jq.py fallback is fed ``orjson.dumps(value)`` text (``input_text``): measured ~20% faster
than ``input_value`` (stdlib ``json.dumps``), and equivalent (same decimal value and printed
form for every float).

Stopping a program. Every run takes a ``timeout`` (seconds; ``None``: no limit). Native
code that loops (anything that iterates outputs: pipes of generators, ``reduce``,
``foreach``, ``recurse``, path updates ...) counts its iterations and reads the clock every
1,024 of them (:func:`jqc.clock.tick`); straight-line programs have no loop and pay nothing.
libjq is C and cannot be interrupted from Python, so the fallback runs in a helper process
(:mod:`meshline.transforms.sandbox`), killed when the deadline passes and started again for
the next call. A run past its deadline raises :class:`JqTimeout` (never caught by jq's
``try``). Deep recursion in the native code (Python's ``RecursionError``) re-runs the program
on libjq, whose own limits or the deadline end it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import jq as _jqpy
import orjson

from meshline.transforms.jqc.clock import deadlines as _deadlines
from meshline.transforms.jqc.compare import reset_slices as _reset_slices
from meshline.transforms.jqc.compiler import Code, compile_ast
from meshline.transforms.jqc.errors import Fallback, JqCompileError, JqError, JqTimeout
from meshline.transforms.jqc.parser import parse
from meshline.transforms.jqc.pygen import Unfit, generate_program
from meshline.transforms.jqc.pygen import chain as pygen_chain

__all__ = ["JqCompileError", "JqError", "JqProgram", "JqTimeout", "compile_jq"]

_MISSING: Any = object()
_log = logging.getLogger(__name__)

#: Tests set this: an unexpected exception in the native evaluator then propagates instead of
#: being logged and answered by jq.py.
STRICT = False


def _unexpected(program: str, exc: Exception) -> None:
    if STRICT:
        raise exc
    _log.warning("native jq evaluation of %r failed (%r); using jq.py", program, exc)


def _to_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # ints beyond 64 bits, nesting beyond 255: the stdlib encoder (what jq.py uses)
        try:
            return json.dumps(value)
        except (TypeError, ValueError, RecursionError) as e:
            raise JqError(f"input is not serialisable as JSON: {e}") from None


# --------------------------------------------------------------------------- libjq, in a helper process

_libjq_pool: Any = None


def _libjq(program: str, text: str, first: bool, timeout: float | None) -> list[Any]:
    """libjq's outputs of ``program`` for the JSON ``text`` (only the first when ``first``).

    Runs in a helper process (:class:`meshline.transforms.sandbox.Pool`): killed past
    ``timeout`` (:class:`JqTimeout`); a helper that dies (libjq out of memory, a crash)
    makes a :class:`JqError`.
    """
    global _libjq_pool
    from meshline.transforms.sandbox import ChildDied, ChildTimeout, Pool

    pool = _libjq_pool
    if pool is None:
        pool = _libjq_pool = Pool(_libjq_main)
    child = pool.acquire()
    try:
        child.send((program, text, first))
        ok, value = child.recv(timeout)
    except ChildTimeout:
        raise JqTimeout(timeout) from None
    except ChildDied as e:
        raise JqError(f"libjq stopped: {e}") from None
    pool.release(child)
    if not ok:
        raise JqError(value)
    return value  # type: ignore[no-any-return]


#: Memory (bytes) the libjq helper may allocate beyond what it holds at start: a runaway
#: program (``def f: [f]; f``) ends as "libjq stopped" instead of filling the machine first.
LIBJQ_MEMORY = 2 << 30


def _libjq_main(conn: Any, arg: Any) -> None:
    """The helper process: compiles (cached) and runs programs with jq.py."""
    from meshline.transforms.sandbox import become_child, limit_memory, reply, requests

    become_child()
    limit_memory(LIBJQ_MEMORY)
    # libjq prints "jq: error: cannot allocate memory" before it aborts: the dead letter says it
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    compiled: dict[str, Any] = {}
    conn.send_bytes(b"+")
    for program, text, first in requests(conn):
        try:
            prog = compiled.get(program)
            if prog is None:
                if len(compiled) > 256:
                    compiled.clear()
                prog = compiled[program] = _jqpy.compile(program)
            it = iter(prog.input_text(text))
            if first:
                x = next(it, _MISSING)
                out: Any = (True, [] if x is _MISSING else [x])
            else:
                out = (True, list(it))
        except Exception as e:  # jq.py raises ValueError with jq's message
            out = (False, str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}")
        reply(conn, out)


def prewarm_libjq() -> None:
    """Start a libjq helper in the background (a step or filter will need one soon)."""
    import threading

    def warm() -> None:
        global _libjq_pool
        from meshline.transforms.sandbox import Pool

        try:
            pool = _libjq_pool
            if pool is None:
                pool = _libjq_pool = Pool(_libjq_main)
            pool.release(pool.acquire())
        except Exception as e:  # the first call will say what is wrong
            _log.debug("could not start a libjq helper: %r", e)

    threading.Thread(target=warm, name="meshline-libjq-prewarm", daemon=True).start()


_clock = time.monotonic


def _left(timeout: float | None, start: float) -> float | None:
    """What is left of ``timeout`` (counted from ``start``) for the libjq fallback."""
    return None if timeout is None else max(0.0, timeout - (_clock() - start))


class JqProgram:
    """A compiled jq program. Thread-safe; reuse it (see :func:`compile_jq`)."""

    __slots__ = (
        "_code",
        "_jq",
        "_slices",
        "data_only",
        "loops",
        "native",
        "program",
        "reads_data",
        "straight",
    )

    def __init__(
        self,
        program: str,
        jq_program: Any,
        native: tuple[Code, bool] | None,
        data_only: bool = False,
        straight: Any = None,
        reads_data: bool = False,
        loops: bool = False,
    ) -> None:
        self.program = program
        self._jq = jq_program
        self._code: Code | None = native[0] if native is not None else None
        self._slices = native is not None and native[1]
        self.native = native is not None
        # the program is assignments under .data only (piped): on an object its outputs keep
        # every other top-level key of the input as it was (see data_only_program)
        self.data_only = data_only
        # its syntax tree when pygen wrote it as one function (what trigger_chain fuses)
        self.straight = straight
        # on an event's JSON form it reads nothing but .data (see _reads_data_only)
        self.reads_data = reads_data
        # its native code loops: it runs under a deadline (jqc.clock.deadline)
        self.loops = loops

    def __repr__(self) -> str:
        return f"JqProgram({self.program!r}, native={self.native})"

    # -- fallback (libjq through jq.py, in a helper process)

    def _jq_all(self, value: Any, timeout: float | None = None) -> list[Any]:
        return _libjq(self.program, _to_text(value), False, timeout)

    def _jq_first(self, value: Any, timeout: float | None = None) -> Any:
        outs = _libjq(self.program, _to_text(value), True, timeout)
        return outs[0] if outs else _MISSING

    # -- public API

    def run(self, value: Any, timeout: float | None = None) -> list[Any]:
        """All outputs of the program for ``value``, in order.

        Raises :class:`JqError`, or :class:`JqTimeout` past ``timeout`` seconds.
        """
        code = self._code
        if code is None:
            return self._jq_all(value, timeout)
        start = _clock() if timeout is not None else 0.0
        saved = _MISSING
        try:
            if self.loops and timeout is not None:
                saved = getattr(_deadlines, "at", None)
                _deadlines.at = start + timeout
            if code.single:
                return [code.fn(value, ())]
            return list(code.fn(value, ()))
        except (JqError, JqTimeout):
            raise
        except (Fallback, RecursionError):
            pass
        except Exception as e:
            _unexpected(self.program, e)
        finally:
            if saved is not _MISSING:
                _deadlines.at = saved
            if self._slices:
                _reset_slices()
        return self._jq_all(value, _left(timeout, start))

    def _first(self, value: Any, timeout: float | None) -> Any:
        code = self._code
        if code is None:
            return self._jq_first(value, timeout)
        start = _clock() if timeout is not None else 0.0
        saved = _MISSING
        try:
            if self.loops and timeout is not None:
                saved = getattr(_deadlines, "at", None)
                _deadlines.at = start + timeout
            if code.single:
                return code.fn(value, ())
            for x in code.fn(value, ()):
                return x
            return _MISSING
        except (JqError, JqTimeout):
            raise
        except (Fallback, RecursionError):
            pass
        except Exception as e:
            _unexpected(self.program, e)
        finally:
            if saved is not _MISSING:
                _deadlines.at = saved
            if self._slices:
                _reset_slices()
        return self._jq_first(value, _left(timeout, start))

    def single(self, timeout: float | None = None) -> Callable[[Any], list[Any]] | None:
        """For a program with exactly one output per input: ``fn(value)`` with :meth:`run`'s result.

        The same result and errors as ``run(value, timeout)`` with fewer calls per event
        (the hot path of filters and steps); ``None`` for other programs.
        """
        code = self._code
        if code is None or not code.single or self._slices:
            return None
        fn = code.fn
        program = self.program
        slow = self._jq_all
        if self.loops and timeout is not None:

            def single_timed(value: Any) -> list[Any]:
                saved = getattr(_deadlines, "at", None)
                start = _clock()
                _deadlines.at = start + timeout
                try:
                    return [fn(value, ())]
                except (JqError, JqTimeout):
                    raise
                except (Fallback, RecursionError):
                    pass
                except Exception as e:
                    _unexpected(program, e)
                finally:
                    _deadlines.at = saved
                return slow(value, _left(timeout, start))

            return single_timed

        def single(value: Any) -> list[Any]:
            try:
                return [fn(value, ())]
            except JqError:
                raise
            except (Fallback, RecursionError):
                pass
            except Exception as e:
                _unexpected(program, e)
            return slow(value, timeout)

        return single

    def first(self, value: Any, default: Any = None, timeout: float | None = None) -> Any:
        """The first output (the program is not run further), or ``default`` if there is none."""
        x = self._first(value, timeout)
        return default if x is _MISSING else x

    def is_true(self, value: Any, timeout: float | None = None) -> bool:
        """Filter semantics: the first output exists and is ``true``."""
        return self._first(value, timeout) is True


def data_only_program(program: str) -> bool:
    """Whether ``program`` is assignments (``=``, ``|=``, ``+=`` …) to paths under ``.data``, piped.

    Run on an event's JSON form, such a program changes nothing but ``data``: every
    assignment copies the input and sets one path that starts at ``.data``, and the
    right-hand sides only read. So an output's attributes are the input's.
    """
    try:
        return _assigns_data_only(parse(program))
    except Exception:
        return False


def _assigns_data_only(node: Any) -> bool:
    tag = node[0]
    if tag == "pipe":
        return _assigns_data_only(node[1]) and _assigns_data_only(node[2])
    if tag == "paren":
        return _assigns_data_only(node[1])
    if tag != "assign":
        return False
    lhs = node[2]
    while lhs[0] in ("index", "paren"):
        if lhs[0] == "paren":
            lhs = lhs[1]
        elif lhs[1] == ("identity",):
            return lhs[2] == ("literal", "data")
        else:
            lhs = lhs[1]
    return False


def _reads_data_only(node: Any) -> bool:
    """Whether a program, run on an event's JSON form, reads nothing of it but ``.data``.

    Run on ``{"data": data}`` instead, such a program gives the same outputs, except that
    an output which is the form (the result of an assignment) lacks the attributes.
    Conservative: ``.`` appears only as the base of ``.data``, and assignments only in a
    pipe chain at the top, to paths under ``.data``.
    """
    tag = node[0]
    if tag == "pipe":
        if _from_data(node[1]):
            return True  # the right side reads the left's output, the same on either input
        return _reads_data_only(node[1]) and _reads_data_only(node[2])
    if tag == "paren":
        return _reads_data_only(node[1])
    if tag == "assign":
        return _data_path(node[2]) and (node[1] == "|=" or _from_data(node[3]))
    return _from_data(node)


def _data_path(node: Any) -> bool:
    """``.data``, or a path under it whose keys are computed from ``.data`` only."""
    while node[0] == "paren":
        node = node[1]
    if node[0] != "index":
        return False
    if node[1] == ("identity",):
        return bool(node[2] == ("literal", "data"))
    return _data_path(node[1]) and _from_data(node[2])


def _from_data(node: Any) -> bool:
    """A value computed from ``.data`` alone: never the form, nor anything else of it."""
    tag = node[0]
    if tag == "literal":
        return True
    if tag == "index":
        if node[1] == ("identity",):
            return bool(node[2] == ("literal", "data"))
        return _from_data(node[1]) and _from_data(node[2])
    if tag == "binop":
        return _from_data(node[2]) and _from_data(node[3])
    if tag in ("and", "or", "alt", "comma"):
        return _from_data(node[1]) and _from_data(node[2])
    if tag in ("neg", "paren", "tostring"):
        return _from_data(node[1])
    if tag == "pipe":
        return _from_data(node[1])  # the right side sees only the left's output
    if tag == "array":
        return node[1] is None or _from_data(node[1])
    if tag == "object":
        return all(_from_data(k) and _from_data(v) for k, v in node[1])
    return False


def _native(program: str, ast: Any) -> tuple[Code, bool, bool, bool] | None:
    """``(code, may_slice, straight, loops)``: closures, or one generated function when ``straight``."""
    if "\x00" in program or ast is None:
        return None  # libjq reads the program as a C string: it stops at NUL
    try:
        code, may_slice, loops = compile_ast(ast)
    except Exception:  # Unsupported, or anything the subset parser did not foresee
        return None
    # one Python function: nodes inline where pygen writes them, the closures' code elsewhere
    g = generate_program(ast)
    if g is None:
        return code, may_slice, False, loops
    # trigger_chain fuses only what needs no deadline and no slice bookkeeping
    straight = g.single and not g.loops and not g.may_slice
    return Code(g.single, g.fn), g.may_slice, straight, g.loops


def trigger_chain(filters: list[str], steps: list[str]) -> tuple[Callable[[Any], Any], bool] | None:
    """One Python function for jq filters then ``.data``-only jq steps (:func:`pygen.chain`).

    ``None`` unless every program is in pygen's subset and every step assigns under
    ``.data`` only. It uses what :func:`compile_jq` (cached) found for each program: its
    syntax tree and whether it is data-only; the one-by-one path runs the same programs.
    With the function comes whether every program reads nothing but ``.data`` (see
    :func:`_reads_data_only`): then ``{"data": data}`` may stand for the event's JSON form.
    """
    fs = [compile_jq(p) for p in filters]
    ss = [compile_jq(p) for p in steps]
    if any(p.straight is None for p in fs + ss) or not all(p.data_only for p in ss):
        return None
    fn = pygen_chain([p.straight for p in fs], [p.straight for p in ss])
    if fn is None:
        return None
    return fn, all(p.reads_data for p in fs + ss)


def chain_failed(exc: Exception) -> None:
    """A :func:`trigger_chain` function raised ``exc``: its caller runs the steps one by one.

    jq errors, fallbacks to libjq and :class:`Unfit` are expected there; anything else
    is a bug of the generated code, logged (raised in tests, see ``STRICT``).
    """
    if not isinstance(exc, (JqError, JqTimeout, Fallback, Unfit, RecursionError)):
        _unexpected("a trigger's jq chain", exc)


@functools.lru_cache(maxsize=1024)
def compile_jq(program: str) -> JqProgram:
    """Compile ``program`` (cached by text). Raises :class:`JqCompileError` with jq's message."""
    try:
        jq_program = _jqpy.compile(program)
    except Exception as e:
        raise JqCompileError(str(e)) from None
    try:
        ast = parse(program)
    except Exception:  # outside the subset parser: jq.py runs it
        ast = None
    data_only = ast is not None and _assigns_data_only(ast)
    reads_data = ast is not None and _reads_data_only(ast)
    native = _native(program, ast)
    straight = ast if native is not None and native[2] else None
    loops = native is not None and native[3]
    return JqProgram(
        program, jq_program, native[:2] if native else None, data_only, straight, reads_data, loops
    )
