"""docs/deploy.md does what it says: its commands, run against the chart and the gateway.

The walkthrough names its files in the sentence before each block ("... (`sequencer-upload-values.yaml`):").
Every ``helm install`` / ``helm upgrade`` of its ``sh`` blocks is replayed as Helm would run it: its
``-f`` files are the named YAML blocks (merged in order, as Helm does), its ``--set-file`` paths are
named blocks or files of this repository, its ``--set`` values are applied. The chart is rendered
with the result, the values are checked against the settings model and the objects against the
Kubernetes schemas; then the pod's volumes are laid out as the kubelet would (with the Secrets the
doc's ``kubectl create secret`` commands make, and the ConfigMap of its ``kubectl create configmap``)
and ``triggergate validate`` loads what the pod would load. Around that: every ``triggergate``
command line of the doc parses with the real CLI, the JSON files agree with the example, and the
Workflow names and the ``--bus`` URL the doc shows are the ones the code gives.

``triggergate validate examples/sequencer-upload`` itself is tested in
tests/integration/test_examples_sequencer.py.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from gateway.cli import app
from gateway.settings import ChartValues
from sensors.fanout import item_key
from sensors.objects import deterministic_name
from tests.chart.rendering import CHART, ROOT, render
from tests.chart.test_chart import CUSTOM_KINDS, _materialize, kubernetes_validate

DOC = ROOT / "docs" / "deploy.md"
EXAMPLE = ROOT / "examples" / "sequencer-upload"

#: The files the doc writes out in full. A block whose introducing sentence loses its file name
#: would silently drop out of the checks below; this list makes that fail instead.
NAMED_FILES = {
    "sequencer-upload-values.yaml",
    "sequencer-upload-minio-values.yaml",
    "sequencer-upload-kafka-values.yaml",
    "minio-eventsource.yaml",
    "queue-policy.json",
    "seq-landing-notification.json",
    "triggergate-policy.json",
    "triggergate-minio-policy.json",
}

#: The run folder of the walkthrough (the example README's run).
RUN_FOLDER = "runs/250304_A01234_0042_BHXXYYDSXC/"


# --------------------------------------------------------------------------- reading the doc


@dataclass
class Block:
    lang: str
    body: str
    line: int  # of the opening fence, 1-based
    name: str | None  # the file name the sentence before it gives, if any


def _blocks(text: str) -> list[Block]:
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = re.fullmatch(r"```(\w*)\s*", lines[index])
        if not opening:
            index += 1
            continue
        end = lines.index("```", index + 1)
        before = next((line.rstrip() for line in reversed(lines[:index]) if line.strip()), "")
        named = re.search(r"\(`([\w./-]+\.(?:ya?ml|json))`\):$", before)
        name = named.group(1) if named else None
        blocks.append(Block(opening.group(1), "\n".join(lines[index + 1 : end]) + "\n", index + 1, name))
        index = end + 1
    return blocks


BLOCKS = _blocks(DOC.read_text())
NAMED = {block.name: block for block in BLOCKS if block.name}


def _commands() -> Iterator[list[str]]:
    """The command lines of the ``sh`` blocks as shell words (continuations joined, comments and
    ``<placeholders>`` gone), split at pipes, ``;``, ``&&`` and ``&``."""
    for block in BLOCKS:
        if block.lang != "sh":
            continue
        for line in re.sub(r"\\\n", " ", block.body).splitlines():
            if not line.split() or line.split()[0] not in ("helm", "kubectl", "triggergate"):
                continue  # aws, mc, jq...: not ours to parse
            lexer = shlex.shlex(re.sub(r"<[\w-]+>", "PLACEHOLDER", line), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            command: list[str] = []
            for word in lexer:
                if word in ("|", ";", "&&", "&", "||"):
                    if command:
                        yield command
                    command = []
                else:
                    command.append(word)
            if command:
                yield command


COMMANDS = list(_commands())


@dataclass
class HelmInstall:
    words: list[str]
    namespace: str = "default"
    values_files: list[str] = field(default_factory=list)
    set_files: list[tuple[list[str], str]] = field(default_factory=list)
    sets: list[tuple[list[str], str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join(
            [*self.values_files, *(path for _, path in self.set_files), *(v for _, v in self.sets)]
        )


def _key_path(key: str) -> list[str]:
    """Helm's dotted key, with ``\\.`` for a dot inside a key."""
    return [part.replace("\0", ".") for part in key.replace("\\.", "\0").split(".")]


def _helm_installs() -> list[HelmInstall]:
    installs = []
    for words in COMMANDS:
        if words[:2] not in (["helm", "install"], ["helm", "upgrade"]):
            continue
        install = HelmInstall(words)
        positional = []
        rest = iter(words[2:])
        for word in rest:
            if word in ("-n", "--namespace"):
                install.namespace = next(rest)
            elif word in ("-f", "--values"):
                install.values_files.append(next(rest))
            elif word in ("--set-file", "--set"):
                key, _, value = next(rest).partition("=")
                (install.set_files if word == "--set-file" else install.sets).append((_key_path(key), value))
            elif word.startswith("-"):
                raise AssertionError(f"docs/deploy.md: {' '.join(words)}: teach this test Helm's {word}")
            else:
                positional.append(word)
        assert positional[1:] == ["charts/triggergate"], f"the chart is charts/triggergate: {' '.join(words)}"
        installs.append(install)
    return installs


HELM_INSTALLS = _helm_installs()


def _created(kind: str) -> dict[str, dict[str, str]]:
    """What the doc's ``kubectl create secret generic`` / ``create configmap`` commands create: name ->
    files (for a Secret the literal values; ``$VAR`` stays as written)."""
    made: dict[str, dict[str, str]] = {}
    for words in COMMANDS:
        if words[0] != "kubectl" or "create" not in words:
            continue
        args = words[words.index("create") + 1 :]
        if kind == "secret" and args[:2] == ["secret", "generic"]:
            name, options = args[2], args[3:]
        elif kind == "configmap" and args[:1] == ["configmap"]:
            name, options = args[1], args[2:]
        else:
            continue
        files: dict[str, str] = {}
        for option in options:
            if option.startswith("--from-literal="):
                key, _, value = option.removeprefix("--from-literal=").partition("=")
                files[key] = value
            elif option.startswith("--from-file="):
                path = ROOT / option.removeprefix("--from-file=")
                files[path.name] = path.read_text()
        made[name] = files
    return made


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of values files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _put(values: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        values = values.setdefault(key, {})
    values[path[-1]] = value


def _values_of(install: HelmInstall) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in install.values_files:
        assert name in NAMED, f"docs/deploy.md: `-f {name}` is not a file the doc writes out"
        values = _deep_merge(values, yaml.safe_load(NAMED[name].body))
    for path, source in install.set_files:
        if source in NAMED:
            text = NAMED[source].body
        else:
            assert (ROOT / source).is_file(), f"docs/deploy.md: --set-file {source}: no such file"
            text = (ROOT / source).read_text()
        _put(values, path, text)
    for path, text in install.sets:
        _put(values, path, text)
    return values


# --------------------------------------------------------------------------- the blocks


def test_the_doc_writes_out_the_files_it_names() -> None:
    assert set(NAMED) == NAMED_FILES
    for block in NAMED.values():
        assert block.lang == Path(block.name or "").suffix.lstrip(".").replace("yml", "yaml"), block.name


def test_every_values_file_is_named_and_installed() -> None:
    """A YAML block that is not a manifest is a values file: it must have a name, and a `helm install`
    of the doc must use it (so that the next test renders it)."""
    used = {name for install in HELM_INSTALLS for name in install.values_files}
    used |= {source for install in HELM_INSTALLS for _, source in install.set_files}
    for block in BLOCKS:
        if block.lang != "yaml":
            continue
        doc = yaml.safe_load(block.body)
        if isinstance(doc, dict) and "apiVersion" in doc and block.name is None:
            continue  # a manifest shown as an illustration (the EventBus)
        assert block.name, f"docs/deploy.md:{block.line}: name the values file in the sentence before it"
        assert block.name in used, (
            f"docs/deploy.md:{block.line}: no helm install of the doc uses {block.name}"
        )


@pytest.mark.parametrize("install", HELM_INSTALLS, ids=lambda install: install.label)
def test_each_helm_install_renders_valid_objects_that_the_gateway_loads(
    install: HelmInstall, tmp_path: Path
) -> None:
    values = _values_of(install)
    ChartValues.model_validate(values)
    rendered = render(values, chart=CHART, namespace=install.namespace)
    validator = kubernetes_validate()
    for version in ("1.30", validator.latest_version()):
        for obj in rendered.objects:
            if obj["kind"] in CUSTOM_KINDS:
                continue
            try:
                validator.validate(obj, version, strict=True)
            except validator.ValidationError as exc:
                pytest.fail(
                    f"{install.label}: {obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): {exc}"
                )

    # What the pod mounts: the chart's ConfigMap, or the one the doc creates with kubectl.
    volumes = {volume["name"]: volume for volume in rendered.pod["volumes"]}
    config_map = volumes["manifests"]["configMap"]["name"]
    if rendered.all("ConfigMap"):
        config = rendered.one("ConfigMap")["data"]
    else:
        created = _created("configmap")
        assert config_map in created, (
            f"{install.label}: no `kubectl create configmap {config_map}` in the doc"
        )
        config = created[config_map]
    assert not any("kind: WorkflowTemplate" in text for text in config.values()), (
        "the WorkflowTemplate is applied with kubectl, not given to the gateway"
    )
    secrets = _created("secret")
    listed = values.get("secrets", {}).get("existingSecrets", [])
    missing = [name for name in listed if name not in secrets]
    assert not missing, f"{install.label}: the doc lists {missing} but never creates them"
    _materialize(rendered, tmp_path, config=config, secrets=secrets)

    args = rendered.args
    secrets_dir = tmp_path / args[args.index("--secrets-dir") + 1].lstrip("/")
    result = CliRunner().invoke(
        app, ["validate", str(tmp_path / args[1].lstrip("/")), "--secrets-dir", str(secrets_dir)]
    )
    assert result.exit_code == 0, result.output
    assert "OK: 1 EventSource and 1 Sensor" in result.output


def test_the_walkthrough_installs_the_sequencer_upload_example_on_aws_minio_and_kafka() -> None:
    sources = {
        (tuple(install.values_files), source) for install in HELM_INSTALLS for _, source in install.set_files
    }
    assert (("sequencer-upload-values.yaml",), "examples/sequencer-upload/eventsource.yaml") in sources
    assert (("sequencer-upload-minio-values.yaml",), "minio-eventsource.yaml") in sources
    kafka = ("sequencer-upload-values.yaml", "sequencer-upload-kafka-values.yaml")
    assert (kafka, "examples/sequencer-upload/sensor.yaml") in sources


# --------------------------------------------------------------------------- the store's side


def _example_entry() -> dict[str, Any]:
    source = yaml.safe_load((EXAMPLE / "eventsource.yaml").read_text())
    entry: dict[str, Any] = source["spec"]["s3"]["run-files"]
    return entry


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_the_aws_files_match_the_example() -> None:
    entry = _example_entry()
    queue_arn = f"arn:aws:sqs:{entry['sqs']['region']}:111122223333:{entry['sqs']['queue']}"
    bucket_arn = f"arn:aws:s3:::{entry['bucket']}"

    (notification,) = json.loads(NAMED["seq-landing-notification.json"].body)["QueueConfigurations"]
    assert notification["QueueArn"] == queue_arn
    assert notification["Events"] == ["s3:ObjectCreated:*"]
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": entry["prefix"]}]

    (send,) = json.loads(NAMED["queue-policy.json"].body)["Statement"]
    assert (send["Action"], send["Resource"]) == ("sqs:SendMessage", queue_arn)
    assert send["Condition"]["ArnEquals"]["aws:SourceArn"] == bucket_arn

    statements = json.loads(NAMED["triggergate-policy.json"].body)["Statement"]
    grants = {(action, s["Resource"]) for s in statements for action in _actions(s)}
    assert grants == {
        *(
            (f"sqs:{call}", queue_arn)
            for call in ("ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueUrl")
        ),
        ("s3:ListBucket", bucket_arn),
        ("s3:GetObject", f"{bucket_arn}/{entry['prefix']}*"),
    }


def test_the_minio_event_source_is_the_example_without_sqs() -> None:
    example = yaml.safe_load((EXAMPLE / "eventsource.yaml").read_text())
    minio = yaml.safe_load(NAMED["minio-eventsource.yaml"].body)
    assert minio["metadata"] == example["metadata"]  # the Sensor's eventSourceName
    (name,) = minio["spec"]["s3"]
    assert name in example["spec"]["s3"]  # its eventName
    entry, original = minio["spec"]["s3"][name], _example_entry()
    assert "sqs" not in entry
    for key in ("bucket", "prefix", "events"):
        assert entry[key] == original[key]
    assert {k: v for k, v in entry["webhook"].items() if k != "authSecret"} == original["webhook"]
    policy = json.loads(NAMED["triggergate-minio-policy.json"].body)["Statement"]
    assert {action for s in policy for action in _actions(s)} == {"s3:ListBucket", "s3:GetObject"}


# --------------------------------------------------------------------------- what the doc shows


def _cli_command(words: list[str]) -> tuple[Any, list[str]]:
    """The CLI's (typer's click) command that ``words`` name, and the words after its name."""
    command: Any = typer.main.get_command(app)
    rest = list(words)
    while hasattr(command, "commands"):
        name = rest.pop(0)
        assert name in command.commands, f"`triggergate {' '.join(words)}`: no command {name!r}"
        command = command.commands[name]
    return command, rest


def _triggergate_invocations() -> Iterator[list[str]]:
    for words in COMMANDS:
        if "triggergate" in words and (
            words[0] == "triggergate" or words[words.index("triggergate") - 1] == "--"
        ):
            yield words[words.index("triggergate") + 1 :]


def test_every_triggergate_command_line_of_the_doc_parses() -> None:
    invocations = list(_triggergate_invocations())
    assert any(words[:2] == ["dlq", "replay"] for words in invocations)
    for words in invocations:
        command, rest = _cli_command(words)
        with command.make_context(f"triggergate {' '.join(words)}", rest):
            pass


def test_the_options_the_prose_names_exist() -> None:
    """`triggergate validate --no-secrets ...`, `triggergate run --secrets-dir` and the like."""
    spans = re.findall(r"`triggergate ((?:validate|run|dlq|outbox)[^`]*)`", DOC.read_text())
    assert spans
    for span in spans:
        words = span.split()
        depth = 2 if words[0] in ("dlq", "outbox") else 1
        command, _ = _cli_command(words[:depth])
        options = {opt for param in command.params for opt in param.opts}
        for word in words[depth:]:
            if word.startswith("--"):
                assert word in options, f"`triggergate {span}`: {command.name} has no {word}"


def test_the_workflow_names_shown_are_the_ones_the_gateway_gives() -> None:
    shown = re.findall(r"\b(bwa-align-[a-z0-9]{10})\s+([A-Z]{2}\d{5})\b", DOC.read_text())
    assert len(shown) == 6, shown
    for name, sample in shown:
        key = item_key("sequencer-upload", "align", "seq-landing", RUN_FOLDER, sample)
        assert name == deterministic_name("bwa-align-", key), sample


def test_the_bus_url_shown_is_the_one_the_chart_passes() -> None:
    (shown,) = re.findall(r"The chart passes `--bus ([^`]+)`", DOC.read_text())
    (install,) = [i for i in HELM_INSTALLS if "sequencer-upload-kafka-values.yaml" in i.values_files]
    args = render(_values_of(install), namespace=install.namespace).args
    assert args[args.index("--bus") + 1] == shown


def test_the_paths_the_commands_name_exist() -> None:
    for words in COMMANDS:
        for word in words:
            path = word.split("=", 1)[-1]
            if path.startswith(("examples/", "charts/", "docs/")):
                assert (ROOT / path).exists(), f"docs/deploy.md: {' '.join(words)}: no {path}"
