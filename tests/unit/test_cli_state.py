"""``triggergate dlq`` and ``triggergate outbox`` over a real state directory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app
from gateway.outbox import Outbox
from gateway.store import DeadLetter, SqliteStore

runner = CliRunner()


def seed(state: Path) -> str:
    async def main() -> str:
        store = SqliteStore(state / "state.db")
        await store.start()
        try:
            return await store.dead_letter(
                DeadLetter(
                    key="k" * 32,
                    sensor="bwa-align",
                    trigger="align-run",
                    reason="create Workflow argo/x: 403 Forbidden: cannot create resource",
                    attempts=1,
                    events=[{"dependency": "run", "id": "e1", "source": "s", "type": "webhook", "time": "t"}],
                    created_at=time.time(),
                )
            )
        finally:
            await store.close()

    state.mkdir(parents=True, exist_ok=True)
    return asyncio.run(main())


def test_dlq_list_and_show(tmp_path: Path) -> None:
    state = tmp_path / "state"
    letter_id = seed(state)
    listed = runner.invoke(app, ["dlq", "list", "--state-dir", str(state)])
    assert listed.exit_code == 0, listed.output
    assert (
        letter_id in listed.output
        and "bwa-align/align-run" in listed.output
        and "403 Forbidden" in listed.output
    )
    shown = runner.invoke(app, ["dlq", "show", letter_id, "--state-dir", str(state)])
    assert shown.exit_code == 0, shown.output
    assert f"firing:         {'k' * 32}" in shown.output and '"dependency":"run"' in shown.output
    unknown = runner.invoke(app, ["dlq", "show", "nope", "--state-dir", str(state)])
    assert unknown.exit_code == 1 and "no dead letter nope" in unknown.output


def test_dlq_replay_records_a_request_and_waits_for_a_gateway(tmp_path: Path) -> None:
    state = tmp_path / "state"
    letter_id = seed(state)
    requested = runner.invoke(app, ["dlq", "replay", letter_id, "--state-dir", str(state)])
    assert requested.exit_code == 0, requested.output
    assert f"requested replay of dead letter {letter_id}: bwa-align/align-run" in requested.output
    waited = runner.invoke(
        app, ["dlq", "replay", "--all", "--wait", "--timeout", "0.3", "--state-dir", str(state)]
    )
    assert waited.exit_code == 1
    assert "still waiting after 0s; is a gateway running" in waited.output
    shown = runner.invoke(app, ["dlq", "show", letter_id, "--state-dir", str(state)])
    assert "replay:         requested" in shown.output
    unknown = runner.invoke(app, ["dlq", "replay", "nope", "--state-dir", str(state)])
    assert unknown.exit_code == 1 and "no dead letter nope" in unknown.output
    nothing = runner.invoke(app, ["dlq", "replay", "--state-dir", str(state)])
    assert nothing.exit_code == 2 and "or pass --all" in nothing.output


def test_commands_need_an_existing_state_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dlq", "list", "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 1 and "no state store at" in result.output
    assert not (tmp_path / "none").exists()


def test_outbox_list(tmp_path: Path) -> None:
    state = tmp_path / "state"
    empty = runner.invoke(app, ["outbox", "list", "--state-dir", str(state)])
    assert empty.exit_code == 0 and "is empty" in empty.output
    wf = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "bwa-align-abc", "labels": {"triggergate.io/firing": "f" * 32}},
    }
    asyncio.run(Outbox(state / "outbox").create(wf, "argo"))
    listed = runner.invoke(app, ["outbox", "list", "--state-dir", str(state)])
    assert listed.exit_code == 0
    assert f"argo/bwa-align-abc  Workflow  firing={'f' * 32}" in listed.output
