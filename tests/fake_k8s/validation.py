"""Object-metadata validation, with the messages kube-apiserver uses.

Covers what every kind shares: ``metadata.name`` (RFC 1123 subdomain, or label for namespaces),
``metadata.generateName``, label keys and values, annotation keys and total size, and the JSON types of
``labels``/``annotations``/``finalizers`` (a wrong type is a decode error, 400, not 422). There is no
OpenAPI schema validation of ``spec`` (Argo's minimal CRDs carry no schema either).
"""

from __future__ import annotations

import re
from typing import Any

from .resources import ResourceType
from .selectors import label_key_problem, label_value_problem
from .status import bad_request

Cause = tuple[str, str, str]  # (field, cause reason, detail)

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
MAX_GENERATED_PREFIX = 63 - 5
MAX_ANNOTATIONS_BYTES = 256 * 1024


def name_causes(rt: ResourceType, name: str, field: str = "metadata.name") -> list[Cause]:
    """Problems with an object name for this resource type (empty list when valid)."""
    causes: list[Cause] = []
    if rt.name_rule == "label":
        if len(name) > 63:
            causes.append(
                (field, "FieldValueInvalid", f'Invalid value: "{name}": must be no more than 63 characters')
            )
        if not _LABEL.match(name):
            causes.append((field, "FieldValueInvalid", f'Invalid value: "{name}": {LABEL_MSG}'))
    else:
        if len(name) > 253:
            causes.append(
                (field, "FieldValueInvalid", f'Invalid value: "{name}": must be no more than 253 characters')
            )
        if not _SUBDOMAIN.match(name):
            causes.append((field, "FieldValueInvalid", f'Invalid value: "{name}": {SUBDOMAIN_MSG}'))
    return causes


def _string_map(meta: dict[str, Any], key: str) -> dict[str, str]:
    value = meta.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_request(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field ObjectMeta.metadata.{key} "
            f"of type map[string]string (metadata.{key} must map strings to strings)"
        )
    return value


def check_metadata_types(meta: Any) -> dict[str, Any]:
    """Decode-level checks (400 BadRequest): metadata is an object and its maps hold strings."""
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise bad_request(
            "json: cannot unmarshal into Go struct field of type v1.ObjectMeta (metadata must be an object)"
        )
    _string_map(meta, "labels")
    _string_map(meta, "annotations")
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
    ):
        raise bad_request(
            "json: cannot unmarshal into Go struct field ObjectMeta.metadata.finalizers of type []string"
        )
    for key in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise bad_request(
                f"json: cannot unmarshal {type(meta[key]).__name__} into Go struct field "
                f"ObjectMeta.metadata.{key} of type string"
            )
    return meta


def metadata_causes(meta: dict[str, Any]) -> list[Cause]:
    """Validation problems (422 Invalid) in labels and annotations."""
    causes: list[Cause] = []
    for key, value in _string_map(meta, "labels").items():
        problem = label_key_problem(key)
        if problem:
            causes.append(("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}": {problem}'))
        problem = label_value_problem(value)
        if problem:
            causes.append(("metadata.labels", "FieldValueInvalid", f'Invalid value: "{value}": {problem}'))
    annotations = _string_map(meta, "annotations")
    for key in annotations:
        problem = label_key_problem(key.lower())
        if problem:
            causes.append(("metadata.annotations", "FieldValueInvalid", f'Invalid value: "{key}": {problem}'))
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        causes.append(
            (
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes",
            )
        )
    return causes
