"""``triggergate dlq ...`` and ``triggergate outbox ...``: commands over a gateway's state directory.

    dlq list                     the dead letters, newest first
    dlq show ID                  one dead letter: reason, attempts, events, replay status
    dlq replay ID... | --all     ask the running gateway to fire them again (same idempotency key);
                                 --wait waits for the outcome
    outbox list                  the objects written to <state-dir>/outbox (dry run / no cluster)

They work while the gateway runs: the state store is SQLite in WAL mode, shared by both processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer

from gateway.outbox import list_outbox
from gateway.store import DeadLetter, ReplayRequest, SqliteStore

T = TypeVar("T")

StateDir = Annotated[
    Path, typer.Option("--state-dir", help="The gateway's state directory (as given to `triggergate run`).")
]

dlq_app = typer.Typer(
    name="dlq", help="Inspect and replay dead letters (firings that failed for good).", no_args_is_help=True
)
outbox_app = typer.Typer(
    name="outbox", help="Objects written instead of created (dry run or no cluster).", no_args_is_help=True
)


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_store(state_dir: Path, action: Callable[[SqliteStore], Awaitable[T]]) -> T:
    path = state_dir / "state.db"
    if not path.is_file():
        typer.echo(f"no state store at {path}; pass the --state-dir the gateway runs with", err=True)
        raise typer.Exit(code=1)

    async def main() -> T:
        store = SqliteStore(path)
        await store.start()
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(main())


def _one_line(letter: DeadLetter) -> str:
    reason = " ".join(letter.reason.split())
    if len(reason) > 100:
        reason = reason[:97] + "..."
    return (
        f"{letter.id}  {_when(letter.created_at)}  {letter.sensor}/{letter.trigger}  "
        f"attempts={letter.attempts}  {reason}"
    )


@dlq_app.command("list")
def dlq_list(
    state_dir: StateDir = Path(".triggergate"),
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")] = 100,
) -> None:
    """List dead letters, newest first: id, time, sensor/trigger, attempts, reason."""
    letters = _with_store(state_dir, lambda store: store.list_dead_letters(limit))
    if not letters:
        typer.echo("no dead letters")
        return
    for letter in letters:
        typer.echo(_one_line(letter))


@dlq_app.command("show")
def dlq_show(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="A dead letter id from `dlq list`.")],
    state_dir: StateDir = Path(".triggergate"),
) -> None:
    """Show one dead letter: its firing, reason, attempts, events and replay status."""

    async def load(store: SqliteStore) -> tuple[DeadLetter | None, ReplayRequest | None]:
        return await store.get_dead_letter(letter_id), await store.get_replay(letter_id)

    letter, replay = _with_store(state_dir, load)
    if letter is not None:
        shown = letter
    elif replay is not None:
        shown = replay.letter  # released for a replay: show the copy kept with the request
    else:
        typer.echo(f"no dead letter {letter_id}; see `triggergate dlq list`", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"dead letter {shown.id}")
    typer.echo(f"  sensor/trigger: {shown.sensor}/{shown.trigger}")
    typer.echo(f"  firing:         {shown.key}")
    typer.echo(f"  created:        {_when(shown.created_at)}")
    typer.echo(f"  attempts:       {shown.attempts}")
    typer.echo(f"  reason:         {shown.reason}")
    if replay is not None:
        typer.echo(
            f"  replay:         {replay.status} (requested {_when(replay.requested_at)}, "
            f"finished {_when(replay.finished_at)})" + (f": {replay.outcome}" if replay.outcome else "")
        )
    typer.echo("  events:")
    for event in shown.events:
        typer.echo("    " + orjson.dumps(event).decode())


@dlq_app.command("replay")
def dlq_replay(
    letter_ids: Annotated[
        list[str] | None, typer.Argument(metavar="[ID]...", help="Dead letter ids from `dlq list`.")
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the gateway carried them out.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds to wait with --wait.")] = 120.0,
    state_dir: StateDir = Path(".triggergate"),
) -> None:
    """Ask the running gateway to fire dead letters again, with the same idempotency key.

    The gateway (`triggergate run` with the same --state-dir) picks the requests up within a second.
    A firing whose object was in fact created earlier finds it again instead of creating a second one.
    """
    if not letter_ids and not replay_all:
        typer.echo("name dead letter ids (see `triggergate dlq list`) or pass --all", err=True)
        raise typer.Exit(code=2)

    async def request(store: SqliteStore) -> tuple[list[str], list[str]]:
        ids = list(letter_ids or [])
        if replay_all:
            ids += [letter.id for letter in await store.list_dead_letters(limit=1_000_000)]
        requested, unknown = [], []
        for letter_id in dict.fromkeys(ids):
            req = await store.request_replay(letter_id, time.time())
            if req is None:
                unknown.append(letter_id)
                continue
            requested.append(letter_id)
            letter = req.letter
            typer.echo(
                f"requested replay of dead letter {letter.id}: {letter.sensor}/{letter.trigger}, "
                f"firing {letter.key}"
            )
        return requested, unknown

    requested, unknown = _with_store(state_dir, request)
    for letter_id in unknown:
        typer.echo(f"no dead letter {letter_id}; see `triggergate dlq list`", err=True)
    if not requested:
        if not unknown:
            typer.echo("no dead letters to replay")
        raise typer.Exit(code=1 if unknown else 0)
    failed = bool(unknown)
    if wait:
        failed = _wait_for(state_dir, requested, timeout) or failed
    else:
        typer.echo("the running gateway carries them out; see `triggergate dlq show ID`")
    raise typer.Exit(code=1 if failed else 0)


def _wait_for(state_dir: Path, letter_ids: list[str], timeout: float) -> bool:
    """Wait for the outcomes; print them; True if any replay did not succeed."""

    async def poll(store: SqliteStore) -> bool:
        deadline = time.monotonic() + timeout
        waiting = list(letter_ids)
        failed = False
        while waiting:
            for letter_id in list(waiting):
                replay = await store.get_replay(letter_id)
                if replay is None or replay.status == "requested":
                    continue
                waiting.remove(letter_id)
                ok = replay.status in ("succeeded", "already-done")
                failed = failed or not ok
                detail = f": {replay.outcome}" if replay.outcome else ""
                typer.echo(f"dead letter {letter_id}: {replay.status}{detail}", err=not ok)
            if waiting and time.monotonic() >= deadline:
                for letter_id in waiting:
                    typer.echo(
                        f"dead letter {letter_id}: still waiting after {timeout:.0f}s; "
                        f"is a gateway running with --state-dir {state_dir}?",
                        err=True,
                    )
                return True
            if waiting:
                await asyncio.sleep(0.2)
        return failed

    return _with_store(state_dir, poll)


@outbox_app.command("list")
def outbox_list(state_dir: StateDir = Path(".triggergate")) -> None:
    """List the objects in <state-dir>/outbox: namespace/name, kind, firing, created, file."""
    root = state_dir / "outbox"
    entries = list_outbox(root)
    if not entries:
        typer.echo(f"the outbox {root} is empty")
        return
    for entry in entries:
        where = f"{entry.namespace}/{entry.name}" if entry.namespace else entry.name
        firing, created = entry.firing or "-", entry.created or "-"
        typer.echo(f"{where}  {entry.kind}  firing={firing}  created={created}  {entry.path}")
