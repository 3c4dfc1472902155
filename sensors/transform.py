"""Event transforms (``dependencies[].transform``): jq or Lua, applied to the event data.

Argo's semantics (``pkg/sensors/dependencies/transform.go``):

* ``transform.jq`` runs a jq program on the event data; the **first** output must be a JSON
  object (``jq transformation output must be a JSON object``); no output is an error. When both
  ``jq`` and ``script`` are set, jq wins.
* ``transform.script`` runs Lua with the global ``event`` = the data; the script must return a
  table, converted back with Argo's array rule (see :mod:`sensors.lua`, which also describes the
  sandbox and its limits).
* Only the data is visible (not the context). The result replaces the event data for filters and
  parameters. ``None`` data is returned unchanged. Any failure raises :class:`TransformError` and
  the engine discards the event for that dependency.

Programs and scripts are compiled once (:func:`compile_transform`), so a syntax error is reported
when the manifest is loaded.

Deviations from Argo, all on inputs Argo rejects or mishandles: data that is not a JSON object
(an array, a string) is given to jq and Lua as it is instead of failing to decode; jq sees an
empty environment (``env``, ``$ENV``) as gojq does without an environ loader, and ``debug`` /
``stderr`` do nothing (``sensors/`` does no I/O); jq modules (``import``, ``include``) are
refused. jq runs in libjq (the ``jq`` package) where Argo uses gojq: the languages agree except
for a few builtins each has on its own. jq programs have no instruction or memory limit (Argo's
neither); Lua scripts do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import jq as _jq

from sensors.lua import DEFAULT_LIMITS, LuaError, LuaLimits, LuaScript

__all__ = [
    "JqTransform",
    "LuaTransform",
    "Transform",
    "TransformError",
    "compile_jq",
    "compile_lua_transform",
    "compile_transform",
]

JQ_NOT_OBJECT: Final = "jq transformation output must be a JSON object"
JQ_NO_OUTPUT: Final = "no output available from the jq command execution"

# Put in front of every program: no environment, no output to stderr, no file names. Written on one
# line, so that line numbers in runtime messages stay those of the user's program.
_JQ_PRELUDE: Final = (
    "def env: {}; def debug: .; def debug($msg): .; def stderr: .; def input_filename: null; {} as $ENV | "
)
# A jq module directive (it must come first in a program, after comments).
_JQ_MODULE_DIRECTIVE: Final = re.compile(r"\A(?:\s|#[^\n]*)*(?:import|include|module)\b")


class TransformError(ValueError):
    """A transform that does not compile, or that fails on an event (the event is then discarded)."""


class Transform(Protocol):
    """A compiled ``transform``: ``apply`` maps event data to new event data."""

    def apply(self, data: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class JqTransform:
    """A compiled ``transform.jq`` program."""

    program: str
    _compiled: Any = field(repr=False, compare=False)

    def apply(self, data: Any) -> Any:
        """The first output of the program on ``data``; it must be a JSON object. ``None`` -> ``None``."""
        if data is None:
            return None
        try:
            outputs = iter(self._compiled.input_value(data))
            result: Any = next(outputs)
        except StopIteration:
            raise TransformError(f"transform.jq {self.program!r}: {JQ_NO_OUTPUT}") from None
        except (ValueError, TypeError) as exc:
            raise TransformError(f"transform.jq {self.program!r} failed: {exc}") from None
        if not isinstance(result, dict):
            raise TransformError(JQ_NOT_OBJECT)
        return result


@dataclass(frozen=True, slots=True)
class LuaTransform:
    """A compiled ``transform.script`` (Lua, sandboxed)."""

    script: LuaScript

    @property
    def source(self) -> str:
        return self.script.source

    def apply(self, data: Any) -> Any:
        """The table the script returns for ``event`` = ``data``, as JSON. ``None`` -> ``None``."""
        if data is None:
            return None
        try:
            return self.script.run_table(data)
        except LuaError as exc:
            raise TransformError(str(exc)) from exc


def _jq_message(exc: Exception) -> str:
    return str(exc).replace("jq: error: ", "").replace("\njq: 1 compile error", "").strip()


def compile_jq(program: str) -> JqTransform:
    """Compile ``transform.jq``; a program that does not compile raises :class:`TransformError`."""
    if _JQ_MODULE_DIRECTIVE.match(program):
        raise TransformError(
            f"transform.jq {program!r} does not compile: jq modules (import, include, module) are not "
            "supported; put the definitions in the program itself"
        )
    try:
        compiled = _jq.compile(_JQ_PRELUDE + program)
    except ValueError:
        try:  # compile the program alone for a message with its own line and column
            _jq.compile(program)
        except ValueError as exc:
            raise TransformError(f"transform.jq {program!r} does not compile: {_jq_message(exc)}") from None
        raise TransformError(f"transform.jq {program!r} does not compile") from None  # pragma: no cover
    return JqTransform(program, compiled)


def compile_lua_transform(script: str, *, limits: LuaLimits = DEFAULT_LIMITS) -> LuaTransform:
    """Compile ``transform.script``; a syntax error raises :class:`TransformError`."""
    try:
        return LuaTransform(LuaScript(script, field="transform.script", limits=limits))
    except LuaError as exc:
        raise TransformError(str(exc)) from exc


def compile_transform(
    jq: str | None, script: str | None, *, limits: LuaLimits = DEFAULT_LIMITS
) -> Transform | None:
    """The transform a dependency declares: jq when set (even with a script, as in Argo), else the
    Lua script, else ``None``. Empty strings count as unset."""
    if jq:
        return compile_jq(jq)
    if script:
        return compile_lua_transform(script, limits=limits)
    return None
