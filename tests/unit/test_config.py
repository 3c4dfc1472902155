"""load_manifests: Argo manifests load unchanged; every problem is reported with file, line and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gateway.config import ManifestError, Manifests, Problem, format_path, load_manifests
from gateway.errors import ConfigError
from sensors.spec import SUPPORTED_SOURCE_TYPES, EventSource, Sensor

FIXTURES = Path(__file__).parent / "manifests"

EVENT_SOURCE = """\
apiVersion: argoproj.io/v1alpha1
kind: EventSource
metadata:
  name: {name}
spec:
  webhook:
    example:
      port: "{port}"
      endpoint: {endpoint}
      method: POST
"""

SENSOR = """\
apiVersion: argoproj.io/v1alpha1
kind: Sensor
metadata:
  name: webhook
spec:
  dependencies:
    - name: test-dep
      eventSourceName: webhook
      eventName: example
  triggers:
    - template:
        name: http-trigger
        http:
          url: http://127.0.0.1:9999/hook
          method: POST
    - template:
        name: log-trigger
        log:
          intervalSeconds: 5
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def event_source(name: str = "webhook", port: str = "12000", endpoint: str = "/example") -> str:
    return EVENT_SOURCE.format(name=name, port=port, endpoint=endpoint)


def line_of(path: Path, needle: str) -> int:
    """1-based number of the only line of ``path`` that contains ``needle``."""
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def column_of(path: Path, needle: str) -> int:
    line = path.read_text().splitlines()[line_of(path, needle) - 1]
    return line.index(needle) + 1


def problems(paths: list[Path], secrets_dir: Path | None = None) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        load_manifests(paths, secrets_dir=secrets_dir)
    assert info.value.problems == [str(p) for p in info.value.details]
    return info.value.details


def only_problem(paths: list[Path], secrets_dir: Path | None = None) -> Problem:
    found = problems(paths, secrets_dir)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def secrets_for_fixtures(tmp_path: Path) -> Path:
    root = tmp_path / "secrets"
    (root / "webhook-auth").mkdir(parents=True)
    (root / "webhook-auth" / "token").write_text("S3cr3tT0ken\n")
    (root / "downstream").mkdir()
    (root / "downstream" / "api-key").write_text("k3y-value\n")
    return root


# --------------------------------------------------------------------------- what loads


def test_the_argo_webhook_example_loads_with_secrets(tmp_path: Path) -> None:
    manifests = load_manifests([FIXTURES], secrets_dir=secrets_for_fixtures(tmp_path))

    assert isinstance(manifests, Manifests)
    [source] = manifests.event_sources
    [sensor] = manifests.sensors
    assert isinstance(source.model, EventSource) and isinstance(sensor.model, Sensor)
    assert source.name == "webhook" and source.namespace == "default"
    assert sorted(source.model.spec.webhook) == ["example", "private"]
    assert source.model.spec.webhook["example"].port == "12000"
    assert [t.template.kind for t in sensor.model.spec.triggers] == ["http", "log"]
    assert source.origin.file == FIXTURES / "webhook-eventsource.yaml"
    assert (source.origin.document, source.origin.line) == (1, 2)  # line 1 is a comment
    assert (sensor.origin.file.name, sensor.origin.document, sensor.origin.line) == (
        "webhook-sensor.yaml",
        1,
        1,
    )
    assert manifests.files == sorted(FIXTURES.glob("*.yaml"))
    assert manifests.warnings == []
    [note] = manifests.notes
    assert "workflow-template.yaml:2:1: document 1 (WorkflowTemplate 'hello')" in note
    assert "skipped" in note and "EventSource, Sensor" in note


def test_without_secrets_dir_secrets_are_not_checked(tmp_path: Path) -> None:
    manifests = load_manifests([FIXTURES], secrets_dir=None)
    assert len(manifests.event_sources) == 1 and len(manifests.sensors) == 1


def test_multi_document_file_counts_documents_from_one_and_skips_empty_ones(tmp_path: Path) -> None:
    text = event_source() + "---\n---\n# only a comment\n---\n" + SENSOR + "---\n"
    path = write(tmp_path, "all.yaml", text)
    manifests = load_manifests([path], secrets_dir=None)
    [source] = manifests.event_sources
    [sensor] = manifests.sensors
    assert (source.origin.document, source.origin.line) == (1, 1)
    assert sensor.origin.document == 4
    assert sensor.origin.line == line_of(path, "kind: Sensor") - 1
    assert str(sensor.origin) == f"{path}:{sensor.origin.line} (document 4)"


def test_directories_are_read_recursively_sorted_and_hidden_entries_skipped(tmp_path: Path) -> None:
    write(tmp_path, "b/sensor.yml", SENSOR)
    write(tmp_path, "a/source.yaml", event_source())
    write(
        tmp_path,
        "c/other.json",
        json.dumps(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "EventSource",
                "metadata": {"name": "other"},
                "spec": {"webhook": {"x": {"port": "13000", "endpoint": "/x"}}},
            },
            indent="\t",
        ),
    )
    write(tmp_path, ".hidden/broken.yaml", "kind: [")
    write(tmp_path, "a/..data/broken.yaml", "kind: [")
    write(tmp_path, "README.md", "kind: [")
    manifests = load_manifests([tmp_path], secrets_dir=None)
    assert [f.relative_to(tmp_path).as_posix() for f in manifests.files] == [
        "a/source.yaml",
        "b/sensor.yml",
        "c/other.json",
    ]
    assert [s.name for s in manifests.event_sources] == ["webhook", "other"]
    assert [s.name for s in manifests.sensors] == ["webhook"]


def test_a_file_given_twice_is_read_once(tmp_path: Path) -> None:
    path = write(tmp_path, "source.yaml", event_source())
    manifests = load_manifests([tmp_path, path], secrets_dir=None)
    assert manifests.files == [path]
    assert len(manifests.event_sources) == 1


# --------------------------------------------------------------------------- field errors


def test_bad_port_names_file_line_column_field_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "source.yaml", event_source(port="abc"))
    problem = only_problem([path])
    assert problem.file == path
    assert problem.line == line_of(path, '"abc"')
    assert problem.column == column_of(path, '"abc"')
    assert problem.document == 1
    assert problem.subject == "EventSource 'webhook'"
    assert problem.field == "spec.webhook.example.port"
    assert "'abc' is not allowed" in problem.message
    assert "port must be a number between 1 and 65535" in problem.message
    assert str(problem).startswith(
        f"{path}:{problem.line}:{problem.column}: document 1 (EventSource 'webhook'): "
        "spec.webhook.example.port: "
    )


def test_unknown_field_lists_the_allowed_fields_and_points_at_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "source.yaml", event_source().replace("endpoint:", "endpointt:"))
    found = problems([path])
    unknown = next(p for p in found if p.field == "spec.webhook.example.endpointt")
    assert unknown.line == line_of(path, "endpointt:")
    assert unknown.column == column_of(path, "endpointt:")
    assert "unknown field" in unknown.message
    assert "did you mean 'endpoint'?" in unknown.message
    allowed = unknown.message.split("allowed fields: ")[1].split(", ")
    assert {"endpoint", "method", "port", "url", "authSecret", "maxPayloadSize", "serverCertSecret"} <= set(
        allowed
    )
    # ... and the now missing 'endpoint' is reported too, at the mapping that lacks it
    missing = next(p for p in found if p.field == "spec.webhook.example.endpoint")
    assert missing.line == line_of(path, "example:")
    assert missing.message == "required field is missing"


def test_unsupported_trigger_type_names_the_supported_ones(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "        http:\n          url: http://127.0.0.1:9999/hook\n          method: POST\n",
        "        awsLambda:\n          functionName: f\n          region: eu-west-1\n",
    )
    path = write(tmp_path, "sensor.yaml", text)
    problem = only_problem([path])
    assert problem.field == "spec.triggers[0].template.awsLambda"
    assert problem.line == line_of(path, "awsLambda:")
    assert "trigger type 'awsLambda' is not implemented" in problem.message
    assert "supported trigger types: http, log, argoWorkflow, k8s" in problem.message


def test_unsupported_source_type_names_the_supported_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mqtt.yaml",
        """\
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata:
          name: mqtt
        spec:
          mqtt:
            example:
              url: tcp://mqtt.argo-events:1883
              topic: topic-2
    """,
    )
    problem = only_problem([path])
    assert (problem.field, problem.line, problem.column) == ("spec.mqtt", 6, 3)
    assert "source type 'mqtt' is not implemented" in problem.message
    assert "supported source types: " + ", ".join(SUPPORTED_SOURCE_TYPES) in problem.message


def test_missing_required_field_points_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    path = write(tmp_path, "sensor.yaml", SENSOR.replace("          url: http://127.0.0.1:9999/hook\n", ""))
    problem = only_problem([path])
    assert problem.field == "spec.triggers[0].template.http.url"
    assert problem.line == line_of(path, "http:")
    assert problem.message == "required field is missing"


def test_bad_comparator_lists_the_allowed_values(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "      eventName: example\n",
        "      eventName: example\n      filters:\n        data:\n          - path: body.n\n"
        "            type: number\n            value: [5]\n            comparator: '=>'\n",
    )
    path = write(tmp_path, "sensor.yaml", text)
    problem = only_problem([path])
    assert problem.field == "spec.dependencies[0].filters.data[0].comparator"
    assert problem.line == line_of(path, "comparator:")
    assert (
        "'=>' is not allowed; comparator must be one of '>=', '>', '=', '!=', '<', '<=', ''"
        in problem.message
    )


def test_bad_http_method_matches_the_documented_line_shape(tmp_path: Path) -> None:
    path = write(
        tmp_path, "x.yaml", event_source() + "---\n" + SENSOR.replace("method: POST", "method: FETCH")
    )
    problem = only_problem([path])
    line = line_of(path, "FETCH")
    assert str(problem) == (
        f"{path}:{line}:19: document 2 (Sensor 'webhook'): spec.triggers[0].template.http.method: "
        "'FETCH' is not allowed; method must be one of GET, DELETE, PATCH, POST, PUT"
    )


def test_union_alternatives_are_reported_once(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "          intervalSeconds: 5\n",
        "          intervalSeconds: 5\n      retryStrategy:\n        duration: [1, 2]\n",
    )
    path = write(tmp_path, "sensor.yaml", text)
    problem = only_problem([path])
    assert problem.field == "spec.triggers[1].retryStrategy.duration"
    assert problem.message.startswith("a list is not allowed; ")
    assert "valid string" in problem.message and "valid integer" in problem.message


def test_object_level_error_and_bad_name_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "source.yaml",
        """\
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata:
          name: Not_A_DNS_Name
        spec:
          webhook: {}
    """,
    )
    found = problems([path])
    by_field = {p.field: p for p in found}
    assert by_field["metadata.name"].line == 4
    assert "lowercase RFC 1123 name" in by_field["metadata.name"].message
    assert by_field["metadata.name"].subject == "EventSource 'Not_A_DNS_Name'"
    assert by_field["spec"].line == 5
    assert by_field["spec"].message.startswith("an EventSource needs at least one event")


def test_all_problems_of_all_files_are_reported_in_file_order(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", event_source(port="abc") + "---\n" + event_source(name="b", port="0"))
    second = write(tmp_path, "b.yaml", SENSOR.replace("method: POST", "method: FETCH"))
    found = problems([tmp_path])
    assert [(p.file, p.document) for p in found] == [(first, 1), (first, 2), (second, 1)]
    with pytest.raises(ManifestError) as info:
        load_manifests([tmp_path], secrets_dir=None)
    assert info.value.files == [first, second]
    assert isinstance(info.value, ConfigError)


# --------------------------------------------------------------------------- documents and files


def test_yaml_syntax_error_names_line_and_column_and_other_files_still_count(tmp_path: Path) -> None:
    broken = write(
        tmp_path,
        "a-broken.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Sensor\nmetadata:\n  name: [unclosed\nspec: {}\n",
    )
    bad = write(tmp_path, "b-bad.yaml", event_source(port="abc"))
    found = problems([tmp_path])
    assert [p.file for p in found] == [broken, bad]
    syntax = found[0]
    assert syntax.line == 5 and syntax.column is not None
    assert syntax.message.startswith("YAML syntax error: ")
    assert "while parsing a flow sequence at line 4, column 9" in syntax.message


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", '{\n  "kind": "Sensor",\n  "metadata": {"name": "x",}\n}\n')
    problem = only_problem([path])
    assert (problem.line, problem.column) == (3, 28)
    assert problem.message.startswith("JSON syntax error: ")


def test_documents_that_are_not_objects_are_errors_and_other_kinds_are_notes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mixed.yaml",
        """\
        - just
        - a list
        ---
        apiVersion: argoproj.io/v1alpha1
        metadata: {name: no-kind}
        ---
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: default}
        ---
        kind: 42
    """,
    )
    found = problems([path])
    assert [(p.document, p.line) for p in found] == [(1, 1), (2, 4), (4, 11)]
    assert "document is a list; expected a mapping" in found[0].message
    assert "has no 'kind'" in found[1].message
    assert found[2].field == "kind" and "42 is not allowed" in found[2].message


def test_other_kinds_alone_load_with_a_note(tmp_path: Path) -> None:
    text = "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata:\n  name: align\n"
    path = write(tmp_path, "wt.yaml", text)
    manifests = load_manifests([path], secrets_dir=None)
    assert manifests.event_sources == [] and manifests.sensors == [] and manifests.event_bus is None
    assert manifests.notes == [
        f"{path}:1:1: document 1 (WorkflowTemplate 'align'): "
        "skipped: triggergate loads only kinds EventSource, Sensor, EventBus"
    ]


def test_wrong_api_version_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", event_source().replace("argoproj.io/v1alpha1", "argoproj.io/v2"))
    problem = only_problem([path])
    assert problem.field == "apiVersion" and problem.line == 1
    assert (
        "'argoproj.io/v2' is not allowed; apiVersion must be one of 'argoproj.io/v1alpha1'" in problem.message
    )


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    text = event_source() + '    example:\n      port: "12001"\n      endpoint: /again\n'
    path = write(tmp_path, "dup.yaml", text)
    problem = only_problem([path])
    assert problem.line == len(text.splitlines()) - 2
    assert problem.document == 1
    assert problem.subject == "EventSource 'webhook'"
    assert problem.field == "spec.webhook.example"
    assert problem.message.startswith("duplicate key (first at line 7); YAML keeps only the last one")


def test_missing_paths_and_empty_directories_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    found = problems([tmp_path / "nope.yaml", empty])
    assert [(p.file, p.message) for p in found] == [
        (tmp_path / "nope.yaml", "no such file or directory"),
        (empty, "no *.yaml, *.yml or *.json files in this directory"),
    ]


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: Sensor\nname: caf\xe9\n")
    assert "not UTF-8" in only_problem([path]).message


# --------------------------------------------------------------------------- cross-object checks


def test_duplicate_endpoint_on_the_same_port_across_event_sources(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", event_source(name="first"))
    second = write(tmp_path, "b.yaml", event_source(name="second"))
    write(tmp_path, "c.yaml", event_source(name="third", port="12001"))  # another port: fine
    problem = only_problem([tmp_path])
    assert problem.file == second
    assert problem.field == "spec.webhook.example.endpoint"
    assert problem.line == line_of(second, "endpoint:")
    assert (
        "port 12000 endpoint '/example' is already served by EventSource 'first' event 'example'"
        in problem.message
    )
    assert f"{tmp_path / 'a.yaml'}:7" in problem.message


def test_events_sharing_a_port_must_agree_on_tls(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", event_source(name="plain"))
    tls = event_source(name="tls", endpoint="/other") + (
        "      serverCertSecret: {name: tls, key: crt}\n      serverKeySecret: {name: tls, key: key}\n"
    )
    path = write(tmp_path, "b.yaml", tls)
    problem = only_problem([tmp_path])
    assert (problem.file, problem.field) == (path, "spec.webhook.example.port")
    assert "different serverCertSecret/serverKeySecret" in problem.message


def test_duplicate_object_names_per_kind_and_namespace(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", event_source())
    again = write(tmp_path, "b.yaml", event_source(port="12001"))
    other_ns = event_source(port="12002").replace(
        "  name: webhook\n", "  name: webhook\n  namespace: team-b\n"
    )
    write(tmp_path, "c.yaml", other_ns)
    write(tmp_path, "d.yaml", SENSOR)  # a Sensor may share the EventSource's name
    problem = only_problem([tmp_path])
    assert (problem.file, problem.field, problem.line) == (again, "metadata.name", 4)
    assert "EventSource 'webhook' in namespace 'default' is defined twice" in problem.message
    assert f"{tmp_path / 'a.yaml'}:1" in problem.message


def test_condition_naming_a_missing_dependency(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "        name: log-trigger\n", "        name: log-trigger\n        conditions: test-dep && ghost\n"
    )
    path = write(tmp_path, "sensor.yaml", text)
    problem = only_problem([path])
    assert problem.field == "spec.triggers[1].template.conditions"
    assert problem.line == line_of(path, "conditions:")
    assert "'ghost'" in problem.message and "dependencies: test-dep" in problem.message


def test_condition_syntax_error(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "        name: log-trigger\n", "        name: log-trigger\n        conditions: 'test-dep &&'\n"
    )
    problem = only_problem([write(tmp_path, "sensor.yaml", text)])
    assert problem.field == "spec.triggers[1].template.conditions"
    assert "test-dep &&" in problem.message


def test_parameter_naming_a_missing_dependency(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "          method: POST\n",
        "          method: POST\n          payload:\n            - src:\n"
        "                dependencyName: nope\n                dataKey: body\n              dest: body\n",
    )
    path = write(tmp_path, "sensor.yaml", text)
    problem = only_problem([path])
    assert problem.field == "spec.triggers[0].template.http.payload[0].src.dependencyName"
    assert problem.line == line_of(path, "dependencyName: nope")
    assert "'nope' is not a dependency of this sensor; dependencies: test-dep" in problem.message


def test_trigger_level_parameters_are_checked_too(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "          intervalSeconds: 5\n",
        "          intervalSeconds: 5\n      parameters:\n        - src: {dependencyName: other, value: x}\n"
        "          dest: http.url\n",
    )
    problem = only_problem([write(tmp_path, "sensor.yaml", text)])
    assert problem.field == "spec.triggers[1].parameters[0].src.dependencyName"


def test_dependency_on_an_event_source_not_loaded_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "sensor.yaml", SENSOR)
    manifests = load_manifests([tmp_path], secrets_dir=None)
    [warning] = manifests.warnings
    assert "spec.dependencies[0].eventSourceName: no EventSource 'webhook' is loaded" in warning
    assert "sensor.yaml:8:" in warning


def test_dependency_on_an_unknown_event_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "source.yaml", event_source())
    write(tmp_path, "sensor.yaml", SENSOR.replace("eventName: example", "eventName: exmaple"))
    [warning] = load_manifests([tmp_path], secrets_dir=None).warnings
    assert "spec.dependencies[0].eventName: EventSource 'webhook' has no event 'exmaple'" in warning
    assert "its events: example" in warning


def test_dependency_on_an_event_source_in_another_namespace_is_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        "source.yaml",
        event_source().replace("  name: webhook\n", "  name: webhook\n  namespace: x\n"),
    )
    write(tmp_path, "sensor.yaml", SENSOR)
    [warning] = load_manifests([tmp_path], secrets_dir=None).warnings
    assert "loaded only in namespace(s) x, not in 'default'" in warning


# --------------------------------------------------------------------------- secrets


def test_missing_secret_names_the_file_it_looked_for_and_the_field(tmp_path: Path) -> None:
    secrets = secrets_for_fixtures(tmp_path)
    (secrets / "downstream" / "api-key").unlink()
    problem = only_problem([FIXTURES], secrets_dir=secrets)
    assert problem.file == FIXTURES / "webhook-sensor.yaml"
    assert problem.field == "spec.triggers[0].template.http.secureHeaders[0].valueFrom.secretKeyRef"
    assert problem.line == line_of(FIXTURES / "webhook-sensor.yaml", "secretKeyRef:")
    assert str(secrets / "downstream" / "api-key") in problem.message
    assert "mkdir -p" in problem.message


def test_every_selector_is_found_generically(tmp_path: Path) -> None:
    text = SENSOR.replace(
        "          method: POST\n",
        "          method: POST\n          basicAuth:\n            username: {name: basic, key: user}\n"
        "            password: {name: basic, key: pass}\n",
    )
    source = event_source() + "      authSecret: {name: hook, key: token}\n"
    write(tmp_path, "m/sensor.yaml", text)
    write(tmp_path, "m/source.yaml", source)
    found = problems([tmp_path / "m"], secrets_dir=tmp_path / "secrets")
    assert sorted(p.field or "" for p in found) == [
        "spec.triggers[0].template.http.basicAuth.password",
        "spec.triggers[0].template.http.basicAuth.username",
        "spec.webhook.example.authSecret",
    ]


def test_optional_secret_may_be_missing(tmp_path: Path) -> None:
    source = event_source() + "      authSecret: {name: hook, key: token, optional: true}\n"
    write(tmp_path, "source.yaml", source)
    manifests = load_manifests([tmp_path], secrets_dir=tmp_path / "secrets")
    [warning] = manifests.warnings
    assert "spec.webhook.example.authSecret: optional secret 'hook' key 'token' not found" in warning


def test_secret_values_never_appear_in_problems(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "hook").mkdir(parents=True)
    (secrets / "hook" / "token").write_text("Sup3rS3cret\n")
    manifests = tmp_path / "m"
    # a.yaml references the secret properly; b.yaml has the token pasted where the selector belongs
    # and into a field whose bad value would be quoted.
    write(manifests, "a.yaml", event_source(name="a") + "      authSecret: {name: hook, key: token}\n")
    write(
        manifests,
        "b.yaml",
        event_source(name="b", port="12001").replace("method: POST", "method: Sup3rS3cret")
        + "      authSecret: Sup3rS3cret\n",
    )
    found = problems([manifests], secrets_dir=secrets)
    rendered = "\n".join(map(str, found))
    assert "Sup3rS3cret" not in rendered
    assert "spec.webhook.example.authSecret: the value (not shown) is not allowed" in rendered
    assert "spec.webhook.example.method: '***' is not allowed" in rendered


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("spec", "triggers", 0, "template", "http", "url"), "spec.triggers[0].template.http.url"),
        (("spec", "webhook", "example", "port"), "spec.webhook.example.port"),
        (("spec", "webhook", "a.b c", "port"), 'spec.webhook["a.b c"].port'),
        ((), ""),
    ],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text
