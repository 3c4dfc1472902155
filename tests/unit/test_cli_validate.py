"""``triggergate validate``: exit codes, problem lines on stderr, a summary of what loaded on stdout."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app

FIXTURES = Path(__file__).parent / "manifests"
TOKEN = "S3cr3tT0ken"
API_KEY = "k3y-value"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    root = tmp_path / "secrets"
    (root / "webhook-auth").mkdir(parents=True)
    (root / "webhook-auth" / "token").write_text(TOKEN + "\n")
    (root / "downstream").mkdir()
    (root / "downstream" / "api-key").write_text(API_KEY + "\n")
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_manifests_exit_0_with_a_summary(runner: CliRunner, secrets: Path) -> None:
    result = runner.invoke(app, ["validate", str(FIXTURES), "--secrets-dir", str(secrets)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == "OK: 1 EventSource and 1 Sensor from 3 files"
    assert f"EventSource 'webhook' (namespace default) at {FIXTURES / 'webhook-eventsource.yaml'}:2" in out
    assert "  event 'example': webhook POST :12000/example\n" in out
    assert "  event 'private': webhook POST :12000/private (bearer token)\n" in out
    assert "Sensor 'webhook' (namespace default)" in out
    assert "  dependency 'test-dep': EventSource 'webhook' event 'example'\n" in out
    assert (
        "  trigger 'http-trigger': http POST http://127.0.0.1:9999/hook"
        " (conditions: test-dep || private-dep)\n" in out
    )
    assert "  trigger 'log-trigger': log\n" in out
    assert "note: " in result.stderr and "WorkflowTemplate 'hello'" in result.stderr
    assert TOKEN not in result.output and API_KEY not in result.output


def test_missing_secrets_in_the_default_dir_exit_1(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --secrets-dir is ./secrets, which does not exist here
    result = runner.invoke(app, ["validate", str(FIXTURES)])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert (
        "webhook-eventsource.yaml:24:7: document 1 (EventSource 'webhook'): spec.webhook.private.authSecret:"
        in lines[0]
    )
    assert "no file secrets/webhook-auth/token" in lines[0]
    assert "secrets/downstream/api-key" in lines[1]
    assert lines[2] == "2 problems in 2 files"


def test_no_secrets_skips_the_secret_check(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", str(FIXTURES), "--no-secrets"])
    assert result.exit_code == 0, result.output
    assert "secrets were not checked (--no-secrets)" in result.stderr


def test_problems_are_listed_one_per_line_with_a_count(runner: CliRunner, tmp_path: Path) -> None:
    write(
        tmp_path / "m" / "a.yaml",
        """\
        apiVersion: argoproj.io/v1alpha1
        kind: EventSource
        metadata:
          name: hooks
        spec:
          webhook:
            example:
              port: abc
              endpoint: /example
    """,
    )
    write(tmp_path / "m" / "b.yaml", "kind: Sensor\nmetadata: [\n")
    result = runner.invoke(app, ["validate", str(tmp_path / "m"), "--no-secrets"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'm' / 'a.yaml'}:8:13: document 1 (EventSource 'hooks'): ")
    assert "spec.webhook.example.port: 'abc' is not allowed" in lines[0]
    assert lines[1].startswith(f"{tmp_path / 'm' / 'b.yaml'}:3:1: YAML syntax error: ")
    assert lines[2] == "2 problems in 2 files"
    assert "OK:" not in result.output


def test_one_problem_is_singular(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'missing.yaml'}: no such file or directory",
        "1 problem in 1 file",
    ]


def test_warnings_are_printed_and_credentials_in_urls_are_masked(runner: CliRunner, tmp_path: Path) -> None:
    write(
        tmp_path / "sensor.yaml",
        """\
        apiVersion: argoproj.io/v1alpha1
        kind: Sensor
        metadata:
          name: lonely
        spec:
          dependencies:
            - name: dep
              eventSourceName: elsewhere
              eventName: example
          triggers:
            - template:
                name: call
                http:
                  url: https://bob:hunter2@example.com:8443/hook
    """,
    )
    result = runner.invoke(app, ["validate", str(tmp_path / "sensor.yaml"), "--no-secrets"])
    assert result.exit_code == 0, result.output
    assert "trigger 'call': http POST https://***@example.com:8443/hook" in result.stdout
    assert "hunter2" not in result.output
    assert "warning: " in result.stderr and "no EventSource 'elsewhere' is loaded" in result.stderr


def test_validate_is_a_subcommand_of_the_app(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "validate" in result.stdout
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "--secrets-dir" in result.stdout and "--no-secrets" in result.stdout
