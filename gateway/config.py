"""Load Argo Events ``EventSource`` / ``Sensor`` manifests from files and validate them as a whole.

:func:`load_manifests` reads files and directories of YAML (or JSON) documents, validates every
``EventSource`` and ``Sensor`` with the models of :mod:`sensors.spec`, runs the checks that need
more than one object (duplicate names, webhook port/endpoint clashes, trigger conditions, parameter
dependencies) and resolves every ``SecretKeySelector`` against a secrets directory.

It either returns :class:`Manifests` or raises :class:`ManifestError` (a
:class:`~gateway.errors.ConfigError`) carrying *every* problem found, each located precisely::

    examples/x.yaml:14:9: document 2 (Sensor 'webhook'): spec.triggers[0].template.http.method: 'FETCH'
    is not allowed; method must be one of GET, DELETE, PATCH, POST, PUT

Line and column come from PyYAML's node marks: the document is composed into a node tree and each
field path of a pydantic error is walked down that tree. A missing field points at the line of the
mapping that should hold it. Documents of other kinds (``WorkflowTemplate``, ...) are skipped with
a note; a dependency on an EventSource that is not loaded is a warning, since another process may
publish its events.

An ``EventBus`` (at most one) selects the bus when ``triggergate run`` has no ``--bus``: its
``spec.kafka`` becomes a ``kafka://`` bus URL (:func:`event_bus_url`); other bus types are errors.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import quote, urlencode

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.errors import ConfigError
from gateway.secrets import SecretNotFound, SecretStore
from sensors.conditions import ConditionsError, parse_conditions
from sensors.spec import (
    EventBus,
    EventSource,
    SecretKeySelector,
    Sensor,
    TriggerParameterSource,
    WebhookContext,
)

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
LOADED_KINDS: dict[str, type[EventSource] | type[Sensor] | type[EventBus]] = {
    "EventSource": EventSource,
    "Sensor": Sensor,
    "EventBus": EventBus,
}

M = TypeVar("M", EventSource, Sensor, EventBus)
FieldPath = tuple[str | int, ...]


# --------------------------------------------------------------------------- public results


@dataclass(frozen=True)
class Origin:
    """Where an object was defined: file, document number in the file (1-based) and first line."""

    file: Path
    document: int
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line} (document {self.document})"


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A validated object and where it came from."""

    model: M
    origin: Origin

    @property
    def name(self) -> str:
        return self.model.metadata.name

    @property
    def namespace(self) -> str:
        return self.model.metadata.namespace


@dataclass(frozen=True)
class Problem:
    """One located finding. ``str()`` renders ``file:line:col: document N (Kind 'name'): field: message``."""

    file: Path
    message: str
    line: int | None = None
    column: int | None = None
    document: int | None = None
    subject: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where]
        if self.document is not None:
            parts.append(f"document {self.document}" + (f" ({self.subject})" if self.subject else ""))
        if self.field:
            parts.append(self.field)
        return ": ".join([*parts, self.message])


class ManifestError(ConfigError):
    """Manifests are invalid. ``problems`` holds the rendered lines, ``details`` the :class:`Problem` s."""

    def __init__(self, details: Sequence[Problem]) -> None:
        self.details = list(details)
        super().__init__([str(p) for p in self.details])

    @property
    def files(self) -> list[Path]:
        """The files that have at least one problem, in order of first appearance."""
        return list(dict.fromkeys(p.file for p in self.details))


@dataclass
class Manifests:
    """Everything :func:`load_manifests` loaded. ``notes`` and ``warnings`` are rendered lines."""

    event_sources: list[Loaded[EventSource]] = field(default_factory=list)
    sensors: list[Loaded[Sensor]] = field(default_factory=list)
    event_bus: Loaded[EventBus] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- entry point


def load_manifests(paths: Sequence[Path], *, secrets_dir: Path | None) -> Manifests:
    """Load, validate and cross-check every manifest under ``paths``.

    ``paths`` are files (any name) or directories (``*.yaml``, ``*.yml``, ``*.json`` below them,
    recursively, sorted, hidden entries skipped). When ``secrets_dir`` is given, every non-optional
    ``SecretKeySelector`` must resolve to ``<secrets_dir>/<name>/<key>``; ``None`` skips that check.

    Raises :class:`ManifestError` with all problems of all files if anything is wrong.
    """
    report = _Report()
    files = _expand(paths, report)
    documents: list[_Document] = []
    for file in files:
        documents.extend(_read_file(file, report))
    for doc in documents:
        _validate(doc, report)
    valid = [doc for doc in documents if doc.model is not None]
    _check_unique_objects(valid, report)
    _check_event_buses([d for d in valid if isinstance(d.model, EventBus)], report)
    _check_event_sources([d for d in valid if isinstance(d.model, EventSource)], report)
    _check_sensors([d for d in valid if isinstance(d.model, Sensor)], valid, report)
    store = SecretStore(secrets_dir) if secrets_dir is not None else None
    if store is not None:
        _check_secrets(valid, store, report)
    redact = _redactor(store)
    if report.problems:
        order = {file: i for i, file in enumerate(files)}
        details = sorted(
            (_redacted(p, redact) for p in report.problems),
            key=lambda p: (order.get(p.file, -1), p.document or 0, p.line or 0, p.column or 0),
        )
        raise ManifestError(details)
    manifests = Manifests(files=files)
    manifests.notes = [redact(str(p)) for p in report.notes]
    manifests.warnings = [redact(str(p)) for p in report.warnings]
    for doc in valid:
        origin = Origin(doc.file, doc.index, doc.root.start_mark.line + 1)
        if isinstance(doc.model, EventSource):
            manifests.event_sources.append(Loaded(doc.model, origin))
        elif isinstance(doc.model, Sensor):
            manifests.sensors.append(Loaded(doc.model, origin))
        elif isinstance(doc.model, EventBus):
            manifests.event_bus = Loaded(doc.model, origin)
    return manifests


def event_bus_url(event_bus: EventBus) -> str:
    """The ``--bus`` URL an ``EventBus`` manifest stands for: ``kafka://<url>/<topic>?consumerGroup=<group>``.

    Argo's defaults: topic ``<namespace>-<eventbus name>``; the consumer group (triggergate's prefix
    of one group per sensor) ``<namespace>-<eventbus name>`` too.
    """
    kafka = event_bus.spec.kafka
    assert kafka is not None  # the model requires it
    meta = event_bus.metadata
    topic = kafka.topic or f"{meta.namespace}-{meta.name}"
    group = kafka.consumer_group.group_name if kafka.consumer_group else None
    query = [("consumerGroup", group or f"{meta.namespace}-{meta.name}")]
    if kafka.tls is not None:
        query.append(("tls", "true"))
        if kafka.tls.ca_cert_secret is not None:
            query.append(("tlsCaSecret", _secret_ref(kafka.tls.ca_cert_secret)))
    if kafka.sasl is not None:
        assert kafka.sasl.user_secret is not None and kafka.sasl.password_secret is not None
        query.append(("saslMechanism", kafka.sasl.mechanism))
        query.append(("saslUserSecret", _secret_ref(kafka.sasl.user_secret)))
        query.append(("saslPasswordSecret", _secret_ref(kafka.sasl.password_secret)))
    return f"kafka://{kafka.url}/{quote(topic, safe='')}?{urlencode(query, safe='/')}"


def _secret_ref(selector: SecretKeySelector) -> str:
    return f"{selector.name}/{selector.key}"


# --------------------------------------------------------------------------- collecting findings


@dataclass
class _Document:
    file: Path
    index: int
    root: yaml.Node
    data: Any
    model: EventSource | Sensor | EventBus | None = None

    @property
    def kind(self) -> str | None:
        kind = self.data.get("kind") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def name(self) -> str | None:
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else None

    @property
    def subject(self) -> str | None:
        if self.kind is None:
            return None
        return f"{self.kind} '{self.name}'" if self.name is not None else self.kind

    def locate(
        self, loc: Sequence[Any], keep: _Keep = "all", *, at_key: bool = False
    ) -> tuple[FieldPath, yaml.Mark]:
        return _locate(self.root, loc, keep, at_key=at_key)


class _Report:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.notes: list[Problem] = []

    def at(
        self,
        doc: _Document,
        loc: Sequence[Any],
        message: str,
        *,
        level: Literal["problem", "warning", "note"] = "problem",
    ) -> None:
        """Record ``message`` about the field at ``loc`` (model field path) of ``doc``."""
        path, mark = doc.locate(loc)
        self.add(
            Problem(
                file=doc.file,
                message=message,
                line=mark.line + 1,
                column=mark.column + 1,
                document=doc.index,
                subject=doc.subject,
                field=format_path(path) or None,
            ),
            level,
        )

    def add(self, problem: Problem, level: Literal["problem", "warning", "note"] = "problem") -> None:
        {"problem": self.problems, "warning": self.warnings, "note": self.notes}[level].append(problem)


def _redactor(store: SecretStore | None) -> Callable[[str], str]:
    values = store.known_values() if store is not None else []

    def redact(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return text

    return redact


def _redacted(problem: Problem, redact: Callable[[str], str]) -> Problem:
    return replace(problem, message=redact(problem.message))


# --------------------------------------------------------------------------- files and documents


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _expand(paths: Sequence[Path], report: _Report) -> list[Path]:
    files: dict[Path, Path] = {}
    if not paths:
        report.add(Problem(file=Path("."), message="no manifest file or directory given"))
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file() and not _hidden(p, path)
            )
            if not found:
                report.add(Problem(file=path, message="no *.yaml, *.yml or *.json files in this directory"))
            for p in found:
                files.setdefault(p.resolve(), p)
        elif path.is_file():
            files.setdefault(path.resolve(), path)
        else:
            report.add(Problem(file=path, message="no such file or directory"))
    return list(files.values())


def _read_file(file: Path, report: _Report) -> list[_Document]:
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        report.add(Problem(file=file, message=f"cannot read file: {exc.strerror or exc}"))
        return []
    except UnicodeDecodeError as exc:
        report.add(Problem(file=file, message=f"not UTF-8 text (bad byte at offset {exc.start})"))
        return []
    if file.suffix.lower() == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            report.add(
                Problem(file=file, line=exc.lineno, column=exc.colno, message=f"JSON syntax error: {exc.msg}")
            )
            return []
        # Valid JSON has no literal tab inside strings, so tabs are whitespace; YAML forbids them
        # as indentation. Replacing them keeps every line and column where it was.
        text = text.replace("\t", " ")
    documents: list[_Document] = []
    loader = yaml.SafeLoader(text)
    try:
        index = 0
        while loader.check_node():
            index += 1
            node = loader.get_node()
            assert node is not None  # check_node() said there is one
            duplicates = _duplicate_keys(node)
            doc = _Document(file=file, index=index, root=node, data=loader.construct_document(node))
            documents.append(doc)
            for path, key, first_line in duplicates:
                report.add(
                    Problem(
                        file=file,
                        message=f"duplicate key (first at line {first_line}); YAML keeps only the last one, "
                        "so remove or rename one of them",
                        line=key.start_mark.line + 1,
                        column=key.start_mark.column + 1,
                        document=index,
                        subject=doc.subject,
                        field=format_path(path),
                    )
                )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        message = f"{what}: {exc.problem or exc.context}"
        if exc.problem and "'\\t'" in exc.problem:
            message += "; YAML is indented with spaces, not tabs"
        context = exc.context_mark
        if exc.context and exc.problem and context is not None:
            message += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
        report.add(
            Problem(
                file=file,
                message=message,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        )
    except yaml.YAMLError as exc:
        report.add(Problem(file=file, message=f"YAML error: {exc}"))
    finally:
        loader.dispose()
    return documents


def _duplicate_keys(root: yaml.Node) -> list[tuple[FieldPath, yaml.Node, int]]:
    """Keys that repeat in one mapping: (path of the key, the repeated key node, line of the first).

    PyYAML silently keeps the last of two equal keys, so a manifest holding both (for example two
    webhook events of the same name) would lose one without a word. Run before construction,
    which rewrites merge keys (``<<``) in place.
    """
    found: list[tuple[FieldPath, yaml.Node, int]] = []
    seen: set[int] = set()
    stack: list[tuple[FieldPath, yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                if key.value in first:
                    found.append(((*path, key.value), key, first[key.value].start_mark.line + 1))
                else:
                    first[key.value] = key
                stack.append(((*path, key.value), value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(((*path, i), item) for i, item in enumerate(node.value))
    return sorted(found, key=lambda f: (f[1].start_mark.line, f[1].start_mark.column))


def _validate(doc: _Document, report: _Report) -> None:
    data = doc.data
    if data is None:  # an empty document, e.g. between two '---'
        return
    if not isinstance(data, dict):
        shape = "a list" if isinstance(data, list) else f"a {type(data).__name__} value"
        report.at(doc, (), f"document is {shape}; expected a mapping of apiVersion, kind, metadata, spec")
        return
    kind = data.get("kind")
    if kind is None:
        report.at(doc, (), "document has no 'kind'; expected kind EventSource, Sensor or EventBus")
        return
    if not isinstance(kind, str):
        report.at(doc, ("kind",), f"{_show(kind, ('kind',))} is not allowed; kind must be a string")
        return
    model_cls = LOADED_KINDS.get(kind)
    if model_cls is None:
        report.at(doc, (), f"skipped: triggergate loads only kinds {', '.join(LOADED_KINDS)}", level="note")
        return
    try:
        doc.model = model_cls.model_validate(data)
    except ValidationError as exc:
        _report_validation_error(doc, model_cls, exc, report)


# --------------------------------------------------------------------------- pydantic errors


def _report_validation_error(
    doc: _Document, model_cls: type[BaseModel], exc: ValidationError, report: _Report
) -> None:
    found: list[tuple[Problem, list[str]]] = []
    unions: dict[tuple[FieldPath, int, int], int] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        kind = error["type"]
        keep: _Keep = "last" if kind == "missing" else "none"
        path, mark = doc.locate(loc, keep, at_key=kind == "extra_forbidden")
        if len(path) < len(loc):
            # A union: pydantic reports each alternative at the same place; say it once.
            key = (path, mark.line, mark.column)
            if key in unions:
                found[unions[key]][1].append(error["msg"])
                continue
            unions[key] = len(found)
        problem = Problem(
            file=doc.file,
            message=_describe(error, model_cls, path),
            line=mark.line + 1,
            column=mark.column + 1,
            document=doc.index,
            subject=doc.subject,
            field=format_path(path) or None,
        )
        found.append((problem, []))
    for problem, alternatives in found:
        if alternatives:
            extra = "".join(f", or {m[:1].lower()}{m[1:]}" for m in alternatives)
            problem = replace(problem, message=problem.message + extra)
        report.add(problem)


def _describe(error: ErrorDetails, model_cls: type[BaseModel], path: FieldPath) -> str:
    kind = error["type"]
    loc = error["loc"]
    name = next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
    msg = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = [a for t in _types_at(model_cls, loc[:-1]) if _is_model(t) for a in _field_names(t)]
        hint = difflib.get_close_matches(name, allowed, n=1)
        suggestion = f"did you mean '{hint[0]}'? " if hint else ""
        return f"unknown field; {suggestion}allowed fields: {', '.join(allowed)}"
    value = error.get("input")
    if kind == "literal_error":
        values = [v for t in _types_at(model_cls, loc) if get_origin(t) is Literal for v in get_args(t)]
        expected = str((error.get("ctx") or {}).get("expected"))
        choices = ", ".join(repr(v) for v in values) if values else expected
        return f"{_show(value, path)} is not allowed; {name} must be one of {choices}"
    if isinstance(value, dict | list) and kind in ("value_error", "assertion_error"):
        return msg  # a whole object failed a check; the message says why
    return f"{_show(value, path)} is not allowed; {msg}"


_SENSITIVE = re.compile(r"pass(word|wd)?|token|secret|api_?key|authorization|credential", re.IGNORECASE)


def _show(value: Any, path: FieldPath) -> str:
    """A short repr for error messages; values of secret-looking fields are never shown."""
    last = str(path[-1]) if path else ""
    if "headers" in path or _SENSITIVE.search(last):
        return "the value (not shown)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _unwrap(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [u for arg in get_args(tp) if arg is not type(None) for u in _unwrap(arg)]
    return [tp]


def _types_at(model_cls: type[BaseModel], loc: Sequence[Any]) -> list[Any]:
    """The annotations that a pydantic error location ``loc`` points at (union tags skipped)."""
    current: list[Any] = [model_cls]
    for part in loc:
        found: list[Any] = []
        for tp in (u for t in current for u in _unwrap(t)):
            origin = get_origin(tp)
            if _is_model(tp) and isinstance(part, str):
                found.extend(
                    info.annotation for name, info in tp.model_fields.items() if part in (name, info.alias)
                )
            elif origin is list and isinstance(part, int):
                found.append(get_args(tp)[0])
            elif origin is dict and isinstance(part, str):
                found.append(get_args(tp)[1])
        if found:
            current = found
    return [u for t in current for u in _unwrap(t)]


# --------------------------------------------------------------------------- field paths and marks

_Keep = Literal["all", "last", "none"]
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_path(path: Sequence[str | int]) -> str:
    """``('spec', 'triggers', 0, 'template')`` -> ``spec.triggers[0].template``; odd keys are quoted."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _locate(
    root: yaml.Node, loc: Sequence[Any], keep: _Keep, *, at_key: bool = False
) -> tuple[FieldPath, yaml.Mark]:
    """Walk ``loc`` down the node tree: the path as far as it exists in YAML, and its mark.

    Parts not found in the YAML are dropped (pydantic's union tags such as ``'str'``) unless
    ``keep`` says to keep them: ``"last"`` for the last part (a missing field), ``"all"`` for
    paths built from models (fields with defaults that the YAML leaves out). The mark of a
    scalar is its value's position; of a mapping or list, the position of its key; of a missing
    field, the position of the key of the mapping that lacks it. ``at_key`` gives the key's
    position for scalars too (an unknown field).
    """
    node: yaml.Node | None = root
    path: list[str | int] = []
    mark = root.start_mark
    holder = root.start_mark
    for i, part in enumerate(loc):
        child: yaml.Node | None = None
        key_mark: yaml.Mark | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str | int) and not isinstance(part, bool):
            for key, value in reversed(node.value):
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child, key_mark = value, key.start_mark
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            key_mark = child.start_mark
        if child is not None and key_mark is not None:
            path.append(part)
            holder = key_mark
            mark = child.start_mark if isinstance(child, yaml.ScalarNode) and not at_key else key_mark
            node = child
        elif keep == "all" or (keep == "last" and i == len(loc) - 1):
            path.append(part)
            mark = holder
            node = None
    return tuple(path), mark


def _walk(value: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """Every value inside a model, with its YAML field path (camelCase names)."""
    yield path, value
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            child = getattr(value, name)
            if child is not None:
                yield from _walk(child, (*path, info.alias or name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield from _walk(item, (*path, key))


# --------------------------------------------------------------------------- cross-object checks


def _check_unique_objects(documents: list[_Document], report: _Report) -> None:
    first: dict[tuple[str, str, str], _Document] = {}
    for doc in documents:
        assert doc.model is not None
        meta = doc.model.metadata
        key = (doc.model.kind, meta.namespace, meta.name)
        if key in first:
            other = first[key]
            report.at(
                doc,
                ("metadata", "name"),
                f"{doc.model.kind} '{meta.name}' in namespace '{meta.namespace}' is defined twice "
                f"(first in {other.file}:{other.root.start_mark.line + 1}, document {other.index}); "
                "names must be unique per kind and namespace",
            )
        else:
            first[key] = doc


def _check_event_buses(documents: list[_Document], report: _Report) -> None:
    """One process runs on one bus: at most one EventBus."""
    for doc in documents[1:]:
        first = documents[0]
        where = f"{first.file}:{first.root.start_mark.line + 1}"
        report.at(
            doc,
            ("metadata", "name"),
            f"a second EventBus (the first is '{first.name}' at {where}); "
            "triggergate runs every loaded EventSource and Sensor on one bus, so keep one EventBus "
            "(or none, for the embedded bus)",
        )


def _check_event_sources(documents: list[_Document], report: _Report) -> None:
    endpoints: dict[tuple[str, str], tuple[_Document, str, str]] = {}
    tls: dict[str, tuple[_Document, str, str, tuple[Any, Any]]] = {}
    port_kinds: dict[str, tuple[_Document, str, str]] = {}
    for doc in documents:
        source = doc.model
        assert isinstance(source, EventSource)
        for name, count in Counter(source.spec.event_names()).items():
            if count > 1:
                report.at(doc, ("spec",), f"event name '{name}' is used {count} times; names must be unique")
        hooks: list[tuple[str, str, WebhookContext]] = [
            ("webhook", event, hook) for event, hook in source.spec.webhook.items()
        ]
        hooks += [("s3", event, s3.webhook) for event, s3 in source.spec.s3.items() if s3.webhook is not None]
        for kind, event, hook in hooks:
            where: tuple[str, ...] = ("spec", kind, event) + (() if kind == "webhook" else ("webhook",))
            if (hook.port, hook.endpoint) in endpoints:
                other, other_kind, other_event = endpoints[(hook.port, hook.endpoint)]
                served_by = _describe_event(other, other_event, other_kind)
                report.at(
                    doc,
                    (*where, "endpoint"),
                    f"port {hook.port} endpoint '{hook.endpoint}' is already served by {served_by}; "
                    "give one of them another endpoint or port",
                )
            else:
                endpoints[(hook.port, hook.endpoint)] = (doc, kind, event)
            first = port_kinds.setdefault(hook.port, (doc, kind, event))
            if first[1] != kind:
                report.at(
                    doc,
                    (*where, "port"),
                    f"port {hook.port} is also used by {_describe_event(first[0], first[2], first[1])}; "
                    f"{kind} and {first[1]} events run separate HTTP servers, so give them different ports",
                )
            pair = (hook.server_cert_secret, hook.server_key_secret)
            if hook.port in tls and tls[hook.port][3] != pair:
                other, other_kind, other_event, _ = tls[hook.port]
                used_by = _describe_event(other, other_event, other_kind)
                report.at(
                    doc,
                    (*where, "port"),
                    f"port {hook.port} is also used by {used_by} with different "
                    "serverCertSecret/serverKeySecret; one port serves either TLS or plain HTTP with one "
                    "certificate, so give both events the same TLS secrets or different ports",
                )
            tls.setdefault(hook.port, (doc, kind, event, pair))


def _describe_event(doc: _Document, event: str, kind: str = "webhook") -> str:
    _, mark = doc.locate(("spec", kind, event))
    what = "event" if kind == "webhook" else f"{kind} event"
    return f"EventSource '{doc.name}' {what} '{event}' ({doc.file}:{mark.line + 1})"


def _check_sensors(sensors: list[_Document], documents: list[_Document], report: _Report) -> None:
    events: dict[str, list[EventSource]] = {}
    for doc in documents:
        if isinstance(doc.model, EventSource):
            events.setdefault(doc.model.metadata.name, []).append(doc.model)
    for doc in sensors:
        sensor = doc.model
        assert isinstance(sensor, Sensor)
        names = [dep.name for dep in sensor.spec.dependencies]
        for i, trigger in enumerate(sensor.spec.triggers):
            try:
                parse_conditions(trigger.template.conditions, names)
            except ConditionsError as exc:
                report.at(doc, ("spec", "triggers", i, "template", "conditions"), str(exc))
        for path, value in _walk(sensor.spec, ("spec",)):
            if not isinstance(value, TriggerParameterSource):
                continue
            known = names + _fan_out_names(sensor, path)
            if value.dependency_name not in known:
                report.at(
                    doc,
                    (*path, "dependencyName"),
                    f"{value.dependency_name!r} is not a dependency of this sensor; "
                    f"dependencies: {', '.join(known)}",
                )
        for i, dep in enumerate(sensor.spec.dependencies):
            _check_dependency_source(doc, i, dep.event_source_name, dep.event_name, events, report)


def _fan_out_names(sensor: Sensor, path: FieldPath) -> list[str]:
    """The name a ``fanOut`` gives its items (``as``), for parameters inside that trigger."""
    if len(path) < 3 or path[:2] != ("spec", "triggers") or not isinstance(path[2], int):
        return []
    fan_out = sensor.spec.triggers[path[2]].template.fan_out
    return [fan_out.as_] if fan_out is not None else []


def _check_dependency_source(
    doc: _Document,
    index: int,
    source_name: str,
    event_name: str,
    events: dict[str, list[EventSource]],
    report: _Report,
) -> None:
    sources = events.get(source_name, [])
    assert isinstance(doc.model, Sensor)
    namespace = doc.model.metadata.namespace
    here = [s for s in sources if s.metadata.namespace == namespace]
    where = ("spec", "dependencies", index)
    if not sources:
        report.at(
            doc,
            (*where, "eventSourceName"),
            f"no EventSource '{source_name}' is loaded; this dependency waits for events that "
            "another process publishes to the bus",
            level="warning",
        )
    elif not here:
        report.at(
            doc,
            (*where, "eventSourceName"),
            f"EventSource '{source_name}' is loaded only in namespace(s) "
            f"{', '.join(sorted({s.metadata.namespace for s in sources}))}, not in '{namespace}'",
            level="warning",
        )
    elif not any(event_name in s.spec.event_names() for s in here):
        known = sorted({e for s in here for e in s.spec.event_names()})
        report.at(
            doc,
            (*where, "eventName"),
            f"EventSource '{source_name}' has no event '{event_name}'; its events: {', '.join(known)}",
            level="warning",
        )


# --------------------------------------------------------------------------- secrets


def _check_secrets(documents: list[_Document], store: SecretStore, report: _Report) -> None:
    for doc in documents:
        for path, value in _walk(doc.model):
            if not isinstance(value, SecretKeySelector):
                continue
            try:
                store.get(value)
            except SecretNotFound as exc:
                if value.optional:
                    message = f"optional {exc.problems[0]}; continuing without it"
                    report.at(doc, path, message, level="warning")
                else:
                    report.at(doc, path, exc.problems[0])
            except ConfigError as exc:
                report.at(doc, path, "; ".join(exc.problems))
