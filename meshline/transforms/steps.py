"""Transformations (SPEC §4) as pure element functions: ``jq``, ``mapping``, ``python``.

Each ``build(config, ctx)`` returns ``fn(event) -> CloudEvent | list[CloudEvent] | None``.
A function that raises makes the compiler dead-letter the trigger's input event
with stage ``transform`` and the step's name; nothing here touches Beam.

Every step takes ``timeout`` (see :mod:`meshline.transforms.limits`): a jq program past it
stops at its next loop iteration (or its libjq helper process is killed); a python step
runs in a child process (:mod:`meshline.transforms.isolated`) that is killed.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from meshline.config import Duration, doc
from meshline.errors import EventError, TransformError
from meshline.events import CloudEvent, from_json_dict
from meshline.registry import BuildContext, Component
from meshline.transforms.limits import nonfinite_path, seconds, timed, timeout_field
from meshline.transforms.mapping import MappingConfig, compile_mapping

__all__ = ["JQ", "MAPPING", "PYTHON", "JqConfig", "PythonConfig", "StepFn"]

StepFn = Callable[[CloudEvent], "CloudEvent | list[CloudEvent] | None"]


# --------------------------------------------------------------------------- jq


@dataclass(frozen=True, kw_only=True)
class JqConfig:
    """Run a jq program on the event (its CloudEvents JSON form) or on its data alone."""

    program: str = doc("the jq program; each output becomes one event")
    scope: Literal["event", "data"] = doc(
        "'event': the program sees and returns whole events in JSON form; 'data': only data", "event"
    )
    timeout: Duration = timeout_field()

    def __post_init__(self) -> None:
        from meshline.transforms.jq import JqCompileError, compile_jq

        try:
            compile_jq(self.program)
        except JqCompileError as e:
            raise ValueError(f"program: {e}") from None


def _derive_ids(event: CloudEvent, outputs: list[CloudEvent]) -> list[CloudEvent]:
    """Several outputs split the event: an output that kept the input id gets ``ID-N`` (N from 1)."""
    if len(outputs) < 2:
        return outputs
    base = event.attributes["id"]
    for n, out in enumerate(outputs, 1):
        if out.attributes.get("id") == base:
            out.attributes["id"] = f"{base}-{n}"
    return outputs


def build_jq(config: JqConfig, ctx: BuildContext) -> StepFn:
    from meshline.transforms.fused import data_only_output
    from meshline.transforms.jq import JqError, JqTimeout, compile_jq, prewarm_libjq

    program = compile_jq(config.program)
    if not program.native:
        prewarm_libjq()
    text = config.program
    timeout = float(config.timeout)
    too_long = f"jq program {text!r} timed out after {seconds(timeout)}"

    if config.scope == "data":

        def jq_data(event: CloudEvent) -> CloudEvent | list[CloudEvent] | None:
            try:
                outs = program.run(event.data, timeout)
            except JqError as e:
                raise TransformError(f"jq program {text!r} failed: {e}") from None
            except JqTimeout:
                raise TransformError(too_long) from None
            if len(outs) == 1:
                return CloudEvent(dict(event.attributes), outs[0])
            return _derive_ids(event, [CloudEvent(dict(event.attributes), o) for o in outs])

        return jq_data

    data_only = program.data_only
    single = program.single(timeout)
    run = program.run

    def jq_event(event: CloudEvent) -> CloudEvent | list[CloudEvent] | None:
        try:
            outs = single(event.json_form()) if single is not None else run(event.json_form(), timeout)
        except JqError as e:
            raise TransformError(f"jq program {text!r} failed: {e}") from None
        except JqTimeout:
            raise TransformError(too_long) from None
        if data_only and len(outs) == 1:
            out = data_only_output(event, outs[0])
            if out is not None:
                return out
        if len(outs) == 1 and type(outs[0]) is dict and "data_base64" not in outs[0]:
            # The common case: the program changed data only. Attributes equal to the
            # input's (already valid) need no second validation.
            form = outs[0]
            attrs = dict(form)
            data = attrs.pop("data", None)
            if attrs == event.attributes:
                return CloudEvent(attrs, data, form) if data is not None else CloudEvent(attrs, data)
        try:
            events = [from_json_dict(o) for o in outs]
        except EventError as e:
            raise TransformError(f"jq program {text!r} did not return a valid CloudEvent: {e}") from None
        if len(events) == 1:
            return events[0]
        return _derive_ids(event, events)

    return jq_event


JQ = Component(
    id="jq",
    kind="transformation",
    config=JqConfig,
    build=build_jq,
    description="Reshape events with a jq program (one event in, zero or more out).",
)


# --------------------------------------------------------------------------- mapping


def build_mapping(config: MappingConfig, ctx: BuildContext) -> StepFn:
    return timed(compile_mapping(config), "mapping", float(config.timeout))


MAPPING = Component(
    id="mapping",
    kind="transformation",
    config=MappingConfig,
    build=build_mapping,
    description="TriggerMesh-style declarative mapping: add, delete, shift, store, parse.",
)


# --------------------------------------------------------------------------- python


@dataclass(frozen=True, kw_only=True)
class PythonConfig:
    """Call Python: a function by reference, or inline code defining ``handle(event)``."""

    function: str | None = doc(
        "'package.module:callable' taking an event; the module is looked for next to the integration "
        "file first, then on the Python path",
        None,
    )
    code: str | None = doc("Python source that defines handle(event)", None)
    timeout: Duration = timeout_field()

    def __post_init__(self) -> None:
        if (self.function is None) == (self.code is None):
            raise ValueError("exactly one of 'function' or 'code' is required")
        if self.function is not None and ":" not in self.function:
            raise ValueError(f"function: expected 'package.module:callable', got {self.function!r}")
        if self.code is not None:
            try:
                compile(self.code, "<python step>", "exec")
            except SyntaxError as e:
                raise ValueError(f"code: line {e.lineno}: {e.msg}") from None


def find_function(reference: str) -> Any:
    """The callable ``module:attr`` names (imported with the current ``sys.path``).

    Raises :class:`TransformError` saying what is missing: the module (with where it was
    looked for), an attribute of it (with the closest names), or that it is not callable.
    """
    module_name, _, attr = reference.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or module_name
        raise TransformError(
            f"cannot load function {reference!r}: no module named {missing!r} (looked in the integration "
            f"file's directory, then on the Python path; put {missing.split('.')[0]}.py next to the file "
            "or install it)"
        ) from None
    except Exception as e:  # the module raised while it was imported
        raise TransformError(
            f"cannot load function {reference!r}: importing {module_name!r} raised {_why(e)}"
        ) from None
    where = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TransformError(
                f"cannot load function {reference!r}: {where!r} has no attribute {part!r}{hint}"
            )
        obj = getattr(obj, part)
        where = f"{where}.{part}"
    if not callable(obj):
        raise TransformError(f"cannot load function {reference!r}: {where!r} is not callable")
    return obj


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def check_python(config: PythonConfig, directory: str | None) -> list[tuple[str, str]]:
    """Load-time check of ``function``: its module imports (from ``directory`` first) and has the callable.

    Imports the module in this process — its top-level code runs, as it will in the step
    — and calls nothing. A module this check imported is forgotten again, so the next
    file checked finds its own.
    """
    if config.function is None or "${" in config.function:
        return []
    module_name = config.function.partition(":")[0]
    before = set(sys.modules)
    added = directory is not None and directory not in sys.path
    if added:
        sys.path.insert(0, str(directory))
    try:
        find_function(config.function)
    except TransformError as e:
        return [("function", str(e).replace(f"cannot load function {config.function!r}: ", "", 1))]
    finally:
        if added:
            sys.path.remove(str(directory))
        parts = module_name.split(".")
        for i in range(len(parts), 0, -1):
            name = ".".join(parts[:i])
            if name not in before:
                sys.modules.pop(name, None)
    return []


def _load_callable(config: PythonConfig) -> Callable[[CloudEvent], Any]:
    if config.function is not None:
        return find_function(config.function)  # type: ignore[no-any-return]
    namespace: dict[str, Any] = {"__name__": "meshline_python_step"}
    exec(compile(config.code or "", "<python step>", "exec"), namespace)
    handle = namespace.get("handle")
    if not callable(handle):
        raise TransformError("code does not define a function handle(event)")
    return handle


def _to_event(value: Any) -> CloudEvent:
    """User code may return anything: keep only valid events whose data is JSON (or bytes)."""
    if isinstance(value, CloudEvent):
        value = value.to_dict()
    elif not isinstance(value, dict):
        raise TransformError(
            f"python step returned {type(value).__name__}, expected an event, a list or None"
        )
    try:
        # One JSON round trip validates and detaches the result from the user's objects.
        raw = orjson.dumps(value)
        if b"null" in raw:  # orjson writes NaN and infinities as null: find them
            where = nonfinite_path(value)
            if where is not None:
                raise TransformError(
                    f"python step returned a non-finite number at {where} (JSON has no NaN or Infinity)"
                )
        return from_json_dict(orjson.loads(raw), default_specversion=True)
    except (TypeError, orjson.JSONEncodeError) as e:
        raise TransformError(f"python step returned an event that is not JSON: {e}") from None
    except EventError as e:
        raise TransformError(f"python step returned an invalid event: {e}") from None


def build_python(config: PythonConfig, ctx: BuildContext) -> Any:
    """The step runs in a child process (:class:`~meshline.transforms.isolated.IsolatedStep`)
    that imports ``function`` from the integration file's directory first."""
    from meshline.transforms.isolated import IsolatedStep

    path = (ctx.directory,) if ctx.directory else ()
    return IsolatedStep(
        "meshline.transforms.steps:python_in_child", config, "python step", config.timeout, path=path
    )


def python_in_child(config: PythonConfig) -> StepFn:
    """The python step as its child process runs it: each event is its own (decoded from a message)."""
    fn = _load_callable(config)

    def python_step(event: CloudEvent) -> CloudEvent | list[CloudEvent] | None:
        original = event.attributes["id"]
        try:
            result = fn(event)
        except TransformError:
            raise
        except BaseException as e:  # SystemExit, KeyboardInterrupt … raised by the code
            raise TransformError(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
        if result is None:
            return None
        if isinstance(result, (list, tuple)):
            return _derive_ids_from(original, [_to_event(r) for r in result])
        return _to_event(result)

    return python_step


def _derive_ids_from(base: str, outputs: list[CloudEvent]) -> list[CloudEvent]:
    """:func:`_derive_ids` for an input whose id was ``base`` (the code may have changed it)."""
    return _derive_ids(CloudEvent({"id": base}), outputs)


PYTHON = Component(
    id="python",
    kind="transformation",
    config=PythonConfig,
    build=build_python,
    description="Call a Python function: by reference (function) or inline (code defining handle).",
    batched=True,
    check=check_python,
)
