"""Render ``charts/triggergate`` offline with Helm's Go SDK (``helm-python-sdk``) and look at the objects.

``render(values)`` is ``helm template tg charts/triggergate -n argo -f values`` (the chart's
``values.yaml`` and ``values.schema.json`` apply); ``lint(values)`` is ``helm lint``. Both import
``helm_python`` lazily, so that a machine without it skips the chart tests instead of failing to
collect them (``helm_sdk()``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "triggergate"
EXAMPLE = ROOT / "examples" / "workflow-from-template"
RELEASE = "tg"
NAMESPACE = "argo"
FULLNAME = "tg-triggergate"


def helm_sdk() -> ModuleType:
    """The ``helm_python`` module, or skip the test with the reason and the fix."""
    try:
        import helm_python
    except ImportError:
        pytest.skip("helm-python-sdk is not installed (it is a dev dependency: pip install -e '.[dev]')")
    except OSError as exc:  # the bundled libhelm_c.so does not load on this platform
        pytest.skip(f"helm-python-sdk cannot load Helm's library here: {exc}")
    return helm_python


def example_manifests() -> dict[str, str]:
    """The EventSource and Sensor of ``examples/workflow-from-template``, as ``config.manifests``."""
    return {name: (EXAMPLE / name).read_text() for name in ("event-source.yaml", "sensor.yaml")}


def with_config(values: dict[str, Any] | None = None) -> dict[str, Any]:
    """``values`` plus the example manifests, unless they set a config of their own."""
    merged = dict(values or {})
    merged.setdefault("config", {"manifests": example_manifests()})
    return merged


@dataclass
class Rendered:
    """The objects of one render, in template order, and the NOTES.txt text."""

    objects: list[dict[str, Any]]
    notes: str
    files: dict[str, str] = field(default_factory=dict)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.one("StatefulSet")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["containers"]
        assert [c["name"] for c in containers] == ["gateway"]
        return dict(containers[0])

    @property
    def args(self) -> list[str]:
        return list(self.container["args"])


def render(
    values: dict[str, Any] | None = None, *, chart: Path = CHART, namespace: str = NAMESPACE
) -> Rendered:
    """Render the chart; a ``fail`` or a schema violation raises Helm's error with the user's message."""
    helm = helm_sdk()
    with helm.Chart.load(str(chart)) as loaded:
        files: dict[str, str] = loaded.render(values or {}, name=RELEASE, namespace=namespace)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path in sorted(files):
        if path.endswith("NOTES.txt"):
            notes = files[path]
            continue
        objects.extend(doc for doc in yaml.safe_load_all(files[path]) if doc)
    return Rendered(objects=objects, notes=notes, files=files)


def lint(values: dict[str, Any] | None = None, *, strict: bool = False) -> dict[str, Any]:
    helm = helm_sdk()
    report: dict[str, Any] = helm.lint(str(CHART), values or {}, strict=strict)
    return report


def chart_without_schema(tmp_path: Path) -> Path:
    """A copy of the chart without ``values.schema.json``: what ``--skip-schema-validation`` leaves."""
    copy = tmp_path / "triggergate"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink()
    return copy
