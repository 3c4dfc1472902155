"""Render a pydantic model's values as YAML with each field's description as a comment above it.

This is how the chart's ``values.yaml`` is generated from :class:`gateway.settings.ChartValues`, so
that its defaults and its documentation cannot drift from the model (and so from the schema).
Fields come in declaration order under their aliases; a nested model becomes a block; a field's
``examples`` are shown as commented YAML below its description.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

WIDTH = 110


def commented_yaml(model: BaseModel) -> str:
    """``model`` as YAML text; top-level fields are separated by blank lines."""
    return "".join(_model_lines(model, indent=0))


def _model_lines(model: BaseModel, indent: int) -> list[str]:
    dumped = model.model_dump(mode="json", by_alias=True)
    lines: list[str] = []
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        if indent == 0 and lines:
            lines.append("\n")
        lines.extend(_comment(info, key, indent))
        pad = " " * indent
        if isinstance(value, BaseModel):
            lines.append(f"{pad}{key}:\n")
            lines.extend(_model_lines(value, indent + 2))
        else:
            lines.extend(_entry(key, dumped[key], indent))
    return lines


def _comment(info: FieldInfo, key: str, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    if info.description:
        for line in textwrap.wrap(info.description, width=WIDTH - indent - 2, break_on_hyphens=False):
            lines.append(f"{pad}# {line}\n")
    for example in info.examples or []:
        lines.append(f"{pad}# Example:\n")
        for line in _entry(key, example, 0):
            lines.append(f"{pad}#   {line}".rstrip() + "\n")
    return lines


def _entry(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` at ``indent``; a non-empty mapping or list becomes a block below the key."""
    pad = " " * indent
    if isinstance(value, dict | list) and value:
        block = _dump(value)
        return [f"{pad}{key}:\n", *(f"{pad}  {line}\n" for line in block.splitlines())]
    return [f"{pad}{key}: {_dump(value).strip()}\n"]


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line strings as ``|`` literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: Any) -> str:
    text = yaml.dump(
        value, Dumper=_Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True, width=WIDTH
    )
    if not isinstance(value, dict | list):
        text = text.removesuffix("...\n")  # the document end marker that PyYAML adds after a scalar
    return text
