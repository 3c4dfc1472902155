"""gateway/settings.py is the one source of the chart's values.yaml and values.schema.json.

No Helm needed: the committed files must equal what the model generates (CI drift check), the
defaults must be valid, and the model and the JSON schema must accept and refuse the same values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from gateway.settings import ChartValues, drifted, main, schema_text, values_schema, values_text
from tests.chart.rendering import CHART, ROOT

REGENERATE = "python -m gateway.settings --write charts/triggergate"


def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((CHART / "values.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def merged(overrides: dict[str, Any]) -> dict[str, Any]:
    """values.yaml with ``overrides`` merged in, as Helm coalesces them (maps merge, the rest replaces)."""

    def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in top.items():
            out[key] = (
                merge(out[key], value)
                if isinstance(value, dict) and isinstance(out.get(key), dict)
                else value
            )
        return {key: value for key, value in out.items() if value is not None}

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return merge(defaults, overrides)


# --------------------------------------------------------------------------- drift


def test_values_schema_json_is_generated_from_the_model() -> None:
    assert (CHART / "values.schema.json").read_text() == schema_text(), f"stale: run `{REGENERATE}`"


def test_values_yaml_is_generated_from_the_model() -> None:
    assert (CHART / "values.yaml").read_text() == values_text(), f"stale: run `{REGENERATE}`"


def test_the_check_command_finds_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--write", str(tmp_path)]) == 0
    assert drifted(tmp_path) == []
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "values.yaml").write_text(values_text().replace("replicas: 1", "replicas: 2"))
    (tmp_path / "values.schema.json").unlink()
    assert main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "values.yaml differs from gateway/settings.py" in err
    assert "values.schema.json differs" in err
    assert "python -m gateway.settings --write" in err


def test_the_module_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.settings", "--schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == values_schema()


# --------------------------------------------------------------------------- the defaults


def test_values_yaml_is_exactly_the_model_defaults() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values == ChartValues().model_dump(mode="json", by_alias=True)
    assert ChartValues.model_validate(values) == ChartValues()


def test_values_yaml_is_valid_for_the_schema() -> None:
    schema_validator().validate(yaml.safe_load((CHART / "values.yaml").read_text()))


def test_every_field_is_documented() -> None:
    undocumented = []

    def walk(model: type[Any], prefix: str) -> None:
        for name, info in model.model_fields.items():
            key = f"{prefix}{info.alias or name}"
            if not info.description:
                undocumented.append(key)
            annotation = info.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, key + ".")

    walk(ChartValues, "")
    assert undocumented == []


def test_the_schema_has_no_titles_and_forbids_unknown_keys() -> None:
    text = schema_text()
    assert '"title"' not in text
    schema = values_schema()
    assert schema["additionalProperties"] is False
    assert all(definition.get("additionalProperties") is False for definition in schema["$defs"].values())


# --------------------------------------------------------------------------- model and schema agree

#: (overrides of values.yaml, whether they are valid, a fragment of the model's error when not).
CASES: list[tuple[str, dict[str, Any], bool, str]] = [
    ("defaults", {}, True, ""),
    ("replicas 2 embedded", {"replicas": 2}, False, "replicas: 2 needs bus.kind: kafka"),
    ("replicas 2 kafka", {"replicas": 2, "bus": {"kind": "kafka", "kafka": {"url": "k:9092"}}}, True, ""),
    ("kafka without url", {"bus": {"kind": "kafka"}}, False, "bus.kafka.url is required"),
    (
        "kafka url with scheme",
        {"bus": {"kind": "kafka", "kafka": {"url": "kafka://k:9092"}}},
        False,
        "pattern",
    ),
    ("kafka several brokers", {"bus": {"kind": "kafka", "kafka": {"url": "a:9092,b.c:9093"}}}, True, ""),
    ("replicas 0", {"replicas": 0}, False, "greater than or equal to 1"),
    ("unknown key", {"replica": 2}, False, "Extra inputs are not permitted"),
    ("unknown nested key", {"persistence": {"sise": "1Gi"}}, False, "Extra inputs are not permitted"),
    ("latest tag", {"image": {"tag": "latest"}}, False, "`latest` is not allowed"),
    ("bad digest", {"image": {"digest": "sha256:xyz"}}, False, "pattern"),
    ("namespace upper case", {"targetNamespaces": ["Lab"]}, False, "pattern"),
    ("namespace twice", {"targetNamespaces": ["lab", "lab"]}, False, "listed twice"),
    ("port twice", {"webhook": {"ports": [12000, 12000]}}, False, "listed twice"),
    ("no webhook port", {"webhook": {"ports": []}}, False, "at least 1 item"),
    ("port out of range", {"webhook": {"ports": [70000]}}, False, "less than or equal to 65535"),
    ("manifest key not yaml", {"config": {"manifests": {"sensor.txt": "x"}}}, False, "pattern"),
    ("manifest key ok", {"config": {"manifests": {"sensor.yaml": "x", "b.json": "{}"}}}, True, ""),
    ("unknown operation", {"rbac": {"argoWorkflow": {"operations": ["delete"]}}}, False, "Input should be"),
    ("k8s rule", {"rbac": {"k8s": [{"apiGroup": "", "resource": "configmaps"}]}}, True, ""),
    ("k8s rule without resource", {"rbac": {"k8s": [{"apiGroup": ""}]}}, False, "Field required"),
    ("percent pdb", {"pdb": {"minAvailable": "50%"}}, True, ""),
    ("storage class", {"persistence": {"storageClass": ""}}, True, ""),
    ("bad size", {"persistence": {"size": "lots"}}, False, "pattern"),
    ("log level", {"logLevel": "trace"}, False, "Input should be"),
    ("existing config map", {"config": {"existingConfigMap": "lab-manifests"}}, True, ""),
    ("bad config map name", {"config": {"existingConfigMap": "Lab_Manifests"}}, False, "pattern"),
    ("bad service account name", {"serviceAccount": {"name": "-gw"}}, False, "pattern"),
    ("relative mount path", {"secrets": {"mountPath": "secrets"}}, False, "pattern"),
    (
        "bad kafka topic",
        {"bus": {"kind": "kafka", "kafka": {"url": "k:9092", "topic": "a/b"}}},
        False,
        "pattern",
    ),
]


@pytest.mark.parametrize(("overrides", "valid", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_model_and_the_schema_agree(overrides: dict[str, Any], valid: bool, message: str) -> None:
    values = merged(overrides)
    schema_errors = [error.message for error in schema_validator().iter_errors(values)]
    try:
        ChartValues.model_validate(values)
    except ValidationError as exc:
        model_error = str(exc)
    else:
        model_error = ""
    assert (not schema_errors) is valid, schema_errors
    assert (not model_error) is valid, model_error
    assert message in model_error


def test_a_model_error_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        ChartValues.model_validate({"secrets": {"existingSecrets": ["a", "a"]}})
    (error,) = caught.value.errors()
    assert error["loc"] == ("secrets", "existingSecrets")
