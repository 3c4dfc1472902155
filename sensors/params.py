"""Argo Events trigger parameters: values taken from the firing's events and written into documents.

Semantics are Argo's (``pkg/sensors/triggers/params.go``).

Resolution of one ``src`` (:func:`resolve_value`):

1. The dependency's event is in the firing:

   * no ``dataKey``/``contextKey`` (nor template): ``value`` if set, else the whole event as JSON,
     ``{"context": {...}, "data": "<base64 of the data bytes>"}``, as Argo serializes it;
   * ``dataKey`` looks up a gjson path in the event data, ``contextKey`` in the context
     (``id, source, specversion, type, datacontenttype, subject, time``); data wins when both are set;
   * the template (``dataTemplate``/``contextTemplate``, Go template + sprig over ``.Input``) is
     tried first, then the key, then ``value``; a template error or empty output falls back;
   * found: objects and arrays as compact JSON, ``null`` as ``null``, strings as they are, numbers and
     booleans as gjson prints them; only strings count as strings for ``useRawData``;
   * not found: ``value`` if set, else :class:`ParameterError`.

2. The event is absent (the other branch of ``a || b``): ``value`` if set, else the parameter is
   skipped (``None``), without error.

Application (:func:`apply_parameters`, :func:`construct_payload`): the value is written at ``dest``
with sjson rules (:func:`sensors.paths.set_path`): ``overwrite``/empty replaces; ``append`` and
``prepend`` join the existing value (as gjson ``.String()``) and the new one into a string when
``dest`` exists (and overwrite when it does not). With ``useRawData: true`` a non-string value is
inserted as JSON (number, boolean, object, array, null); otherwise every value is written as a JSON
string (objects become their JSON text).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sensors.event import Event
from sensors.paths import PathError, compact_json, lookup, set_path
from sensors.spec import TriggerParameter, TriggerParameterSource
from sensors.templates import TemplateError, compile_template

__all__ = [
    "ParameterError",
    "ResolvedValue",
    "apply_parameters",
    "construct_payload",
    "event_json",
    "resolve_value",
]


class ParameterError(ValueError):
    """A parameter cannot be resolved or written; the firing fails (Argo: the trigger errors)."""


@dataclass(frozen=True, slots=True)
class ResolvedValue:
    """A resolved parameter value: its text, and whether it is a string (``False``: raw JSON text
    of a number, boolean, null, object or array found by a key, which ``useRawData`` inserts as JSON)."""

    text: str
    is_string: bool = True

    def json_value(self, use_raw_data: bool) -> Any:
        """The value to write: parsed JSON for raw data when asked for, else the text as a string."""
        if use_raw_data and not self.is_string:
            try:
                return orjson.loads(self.text)
            except orjson.JSONDecodeError:  # NaN/Inf never come from parsed JSON; keep the text
                return self.text
        return self.text


def event_json(event: Event) -> str:
    """The whole event as Argo serializes it for a parameter without a key:
    ``{"context": {...}, "data": "<base64 of the data JSON bytes>"}`` (``null`` data when there is none)."""
    data = None if event.data is None else base64.b64encode(event.data_bytes()).decode("ascii")
    return compact_json({"context": event.context(), "data": data})


def _render_template(template: str, document: Any) -> str | None:
    """Render a ``dataTemplate``/``contextTemplate`` (Go template + sprig) with ``.Input`` = the document.

    As in Argo, an execution error or an empty (or ``<no value>``) result gives ``None``: the
    caller falls back to the key, then to ``value``.
    """
    try:
        out = compile_template(template).render({"Input": document})
    except TemplateError:
        return None
    if out in ("", "<no value>"):
        return None
    return out


def resolve_value(src: TriggerParameterSource, events: Mapping[str, Event]) -> ResolvedValue | None:
    """Resolve one parameter source against the firing's events (dependency name -> event).

    ``None`` means "skip this parameter": its dependency is not in the firing and it has no ``value``.
    Raises :class:`ParameterError` when the key is not found and there is no ``value``.
    """
    event = events.get(src.dependency_name)
    if event is None:
        return None if src.value is None else ResolvedValue(src.value)
    if not (src.data_key or src.context_key or src.data_template or src.context_template):
        return ResolvedValue(src.value if src.value is not None else event_json(event))
    if src.data_key or src.data_template:
        where, document = "event data", event.data
        key, template = src.data_key, src.data_template
    else:
        where, document = "event context", event.context()
        key, template = src.context_key, src.context_template
    if template:
        rendered = _render_template(template, document)
        if rendered is not None:
            return ResolvedValue(rendered)
    if key:
        found = lookup(document, key)
        if found is not None:
            if found.is_string:
                return ResolvedValue(found.value)
            if found.value is None or isinstance(found.value, dict | list):
                return ResolvedValue(found.raw(), is_string=False)
            return ResolvedValue(found.string(), is_string=False)
    if src.value is not None:
        return ResolvedValue(src.value)
    raise ParameterError(
        f"unable to resolve '{src.dependency_name}' parameter value: "
        f"the key '{key}' does not exist in the {where} and the parameter has no default 'value'"
    )


def _write(doc: Any, dest: str, value: Any) -> Any:
    try:
        return set_path(doc, dest, value)
    except PathError as exc:
        raise ParameterError(f"cannot write parameter dest '{dest}': {exc}") from None


def apply_parameters(doc: Any, parameters: Sequence[TriggerParameter], events: Mapping[str, Event]) -> Any:
    """A new document: ``doc`` (not modified, nothing shared) with each parameter written at its ``dest``.

    Used for trigger-level parameters (on the trigger template, e.g. to change ``http.url``) and
    resource-level ones. Raises :class:`ParameterError` for an unresolvable value, an empty ``dest``
    or a ``dest`` that cannot be written.
    """
    result = copy.deepcopy(doc)
    for parameter in parameters:
        resolved = resolve_value(parameter.src, events)
        if resolved is None:
            continue
        if not parameter.dest:
            raise ParameterError(
                f"parameter from dependency '{parameter.src.dependency_name}' has an empty 'dest'; "
                "name the field to write, e.g. 'spec.arguments.parameters.0.value'"
            )
        operation = parameter.operation
        if operation in ("append", "prepend"):
            current = lookup(result, parameter.dest)
            if current is not None:
                existing = current.string()
                text = existing + resolved.text if operation == "append" else resolved.text + existing
                resolved = ResolvedValue(text)
        elif operation not in ("overwrite", ""):
            raise ParameterError(
                f"unsupported trigger parameter operation '{operation}'; use overwrite, append or prepend"
            )
        result = _write(result, parameter.dest, resolved.json_value(parameter.src.use_raw_data))
    return result


def construct_payload(parameters: Sequence[TriggerParameter], events: Mapping[str, Event]) -> bytes:
    """Argo's HTTP (and Kafka, NATS, ...) payload: JSON bytes built from the ``payload`` parameters.

    Starts from the empty document and writes each parameter at its ``dest`` (``operation`` is not
    used here, as in Argo). A parameter with an empty ``dest`` makes its value the whole body, as
    it is (the JSON text of an object, or the plain text of a string), and ends the construction.
    Skipped parameters (absent dependency, no ``value``) write nothing; when nothing is written the
    body is empty (``b""``). Argo crashes on such a skipped parameter; triggergate skips it.
    """
    payload: Any = None
    written = False
    for parameter in parameters:
        resolved = resolve_value(parameter.src, events)
        if resolved is None:
            continue
        if not parameter.dest:
            return resolved.text.encode("utf-8")
        payload = _write(payload, parameter.dest, resolved.json_value(parameter.src.use_raw_data))
        written = True
    return orjson.dumps(payload) if written else b""
