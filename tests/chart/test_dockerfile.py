"""The Dockerfile cannot be built here (no container engine); these checks read it for the essentials.

Pinned base images (no ``latest``), two stages, a numeric non-root user, ``ENTRYPOINT
["triggergate"]`` in exec form, nothing secret in ENV/ARG, a build context that is an allowlist,
and agreement with the chart: the same UID and the same paths as its default values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from gateway.settings import ChartValues
from tests.chart.rendering import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM this instruction belongs to (-1: before the first FROM)


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (enough for these checks)."""
    instructions: list[Instruction] = []
    stage = -1
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1].rstrip() + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued line"
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def _args(instructions: list[Instruction]) -> dict[str, str]:
    found = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.arguments:
            name, _, default = ins.arguments.partition("=")
            found[name] = default
    return found


def _final(instructions: list[Instruction]) -> list[Instruction]:
    last = max(ins.stage for ins in instructions)
    return [ins for ins in instructions if ins.stage == last]


def test_the_parser_joins_continued_lines() -> None:
    parsed = parse("# c\nFROM a:1 AS b\nRUN x \\\n && y\n\nFROM a:1\nUSER 1\n")
    assert [(i.keyword, i.arguments, i.stage) for i in parsed] == [
        ("FROM", "a:1 AS b", 0),
        ("RUN", "x && y", 0),
        ("FROM", "a:1", 1),
        ("USER", "1", 1),
    ]


def test_base_images_are_pinned_slim_python_3_11(instructions: list[Instruction]) -> None:
    args = _args(instructions)
    images = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        image = ins.arguments.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        images.append(image)
    assert len(images) == 2, "two stages: build and runtime"
    for image in images:
        name, _, tag = image.partition(":")
        assert name == "python"
        assert re.fullmatch(r"3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", tag), (
            f"{image}: pin a 3.11.x slim tag"
        )
        assert "latest" not in image


def test_it_is_multi_stage_and_the_final_stage_copies_only_the_venv(instructions: list[Instruction]) -> None:
    froms = [ins for ins in instructions if ins.keyword == "FROM"]
    assert re.search(r"\bAS build$", froms[0].arguments)
    copies = [ins.arguments for ins in _final(instructions) if ins.keyword == "COPY"]
    assert copies == ["--from=build /opt/triggergate /opt/triggergate"]


def test_the_final_user_is_numeric_and_not_root(instructions: list[Instruction]) -> None:
    users = [ins.arguments for ins in _final(instructions) if ins.keyword == "USER"]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric UID lets Kubernetes check runAsNonRoot"
    assert gid == "" or (gid.isdigit() and int(gid) != 0)


def test_the_user_matches_the_chart_security_context(instructions: list[Instruction]) -> None:
    uid, _, gid = [ins.arguments for ins in _final(instructions) if ins.keyword == "USER"][-1].partition(":")
    pod = ChartValues().pod_security_context
    assert (int(uid), int(gid or uid)) == (pod["runAsUser"], pod["runAsGroup"])


def test_entrypoint_is_triggergate_in_exec_form(instructions: list[Instruction]) -> None:
    (entrypoint,) = [ins.arguments for ins in instructions if ins.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["triggergate"]


def test_the_default_command_uses_the_chart_paths(instructions: list[Instruction]) -> None:
    (cmd,) = [ins.arguments for ins in instructions if ins.keyword == "CMD"]
    args = json.loads(cmd)
    values = ChartValues()
    assert args[:2] == ["run", values.config.mount_path]
    assert args[args.index("--state-dir") + 1] == values.persistence.mount_path
    assert args[args.index("--secrets-dir") + 1] == values.secrets.mount_path
    expose = [ins.arguments for ins in instructions if ins.keyword == "EXPOSE"]
    assert expose == [str(values.webhook.ports[0])]


def test_no_secret_is_baked_in(instructions: list[Instruction]) -> None:
    for ins in instructions:
        if ins.keyword in ("ENV", "ARG"):
            assert not re.search(r"(?i)secret|password|passwd|token|api_?key|credential", ins.arguments), ins
    assert "ADD" not in {ins.keyword for ins in instructions}, (
        "COPY only: ADD fetches URLs and unpacks archives"
    )


def test_the_build_context_is_an_allowlist_that_has_what_copy_needs(instructions: list[Instruction]) -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "exclude everything, then allow what the build needs"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for ins in instructions:
        if ins.keyword != "COPY" or ins.arguments.startswith("--from"):
            continue
        *sources, _destination = ins.arguments.split()
        for source in sources:
            name = source.rstrip("/")
            assert name in allowed, f"COPY {source}: not allowed by .dockerignore"
            assert (ROOT / name).exists(), f"COPY {source}: no such file in the repository"
    assert not allowed & {".venv", ".git", "tests", ".triggergate", "secrets"}
