"""``triggergate dlq``, ``outbox`` and ``lineage``: commands over a gateway's state directory.

    dlq list                     the dead letters, newest first
    dlq show ID                  one dead letter: reason, attempts, events, replay status
    dlq replay ID... | --all     ask the running gateway to fire them again (same idempotency key);
                                 --wait waits for the outcome
    outbox list                  the objects written to <state-dir>/outbox (dry run / no cluster)
    lineage event ID             every firing that used an event (and what it created), its dead letters
    lineage firing KEY           a firing with its events in full and the objects it created
    lineage object NS/NAME | -f FILE
                                 the firing (and events) behind an object, by its triggergate.io/firing
                                 label: from the outbox, the cluster (--kubeconfig, --kube-context,
                                 in-cluster) or a file

They work while the gateway runs: the state store is SQLite in WAL mode, shared by both processes.
The lineage answers are assembled by ``gateway.lineage`` (which also says what is kept where); this
module renders them as text or JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer

from gateway.lineage import (
    FiringLineage,
    LineageError,
    MadeObject,
    ObjectLineage,
    ObjectSummary,
    event_lineage,
    firing_lineage,
    object_lineage,
    objects_in_file,
    read_object,
    replica_hint,
)
from gateway.outbox import list_outbox
from gateway.store import DeadLetter, FiringRecord, ReplayRequest, SqliteStore, StoredEvent
from sensors.objects import EVENT_IDS_ANNOTATION, FIRING_LABEL, LAST_FIRING_ANNOTATION

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


# --------------------------------------------------------------------------- lineage

lineage_app = typer.Typer(
    name="lineage",
    help="Which events started which firing and object, and the reverse (from the state store).",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
KubeContext = Annotated[
    str | None,
    typer.Option("--kube-context", help="Read the object from the cluster of this kubeconfig context."),
]
Kubeconfig = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Read the object from the cluster of this kubeconfig.")
]

RELATED_SHOWN = 20  # other firings of the same events listed in text; --json lists them all


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code=1)


def _print_json(doc: Any) -> None:
    typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows in aligned columns under ``headers``; the last column is not padded."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return (indent + "  ".join([*padded, cells[-1]])).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _firing_json(rec: FiringRecord) -> dict[str, Any]:
    return {
        "key": rec.key,
        "sensor": rec.sensor,
        "trigger": rec.trigger,
        "status": rec.status,
        "attempts": rec.attempts,
        "result": rec.result,
        "started": _when(rec.started_at),
        "finished": _when(rec.finished_at),
        "event_ids": rec.event_ids,
        "dependencies": rec.dependencies,
    }


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "firing": letter.key,
        "sensor": letter.sensor,
        "trigger": letter.trigger,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "created": _when(letter.created_at),
    }


def _event_json(event: StoredEvent, role: str) -> dict[str, Any]:
    return {
        "dependency": event.dependency,
        "id": event.event_id,
        "role": role or None,
        "event": event.event,
        "size": event.size,
        "truncated": event.truncated,
    }


def _made_json(obj: MadeObject) -> dict[str, Any]:
    return {
        "kind": obj.kind,
        "namespace": obj.namespace,
        "name": obj.name,
        "outbox": None if obj.outbox is None else str(obj.outbox),
    }


def _object_json(summary: ObjectSummary) -> dict[str, Any]:
    return {
        "apiVersion": summary.api_version,
        "kind": summary.kind,
        "namespace": summary.namespace,
        "name": summary.name,
        "from": summary.origin,
        "firing": summary.firing,
        "event_ids": summary.event_ids,
        "last_firing": summary.last_firing,
    }


def lineage_json(lineage: FiringLineage) -> dict[str, Any]:
    return {
        "firing": _firing_json(lineage.record),
        "events": [_event_json(e, r) for e, r in zip(lineage.events, lineage.roles(), strict=True)],
        "events_not_kept": [{"dependency": dep, "id": event_id} for dep, event_id in lineage.not_kept],
        "objects": [_made_json(obj) for obj in lineage.objects],
        "dead_letter": None if lineage.letter is None else _letter_json(lineage.letter),
        "related_firings": [_firing_json(rec) for rec in lineage.related],
    }


def _firing_rows(records: Sequence[FiringRecord]) -> list[str]:
    rows = [
        [
            _when(rec.finished_at),
            f"{rec.sensor}/{rec.trigger}",
            rec.status,
            str(rec.attempts),
            rec.key,
            _short(rec.result),
        ]
        for rec in records
    ]
    return _table(["FINISHED", "SENSOR/TRIGGER", "STATUS", "ATTEMPTS", "FIRING", "RESULT"], rows)


def _event_lines(event: StoredEvent, role: str) -> list[str]:
    doc = event.event
    title = event.dependency or "(no dependency name)"
    data = doc.get("data")
    if role == "fan-out item" and isinstance(data, dict) and data:
        group, value = next(iter(data.items()))
        title += f" (fan-out item: {group} {value} of run {data.get('run', '?')})"
    elif role:
        title += f" ({role})"
    lines = [f"  {title}"]
    for name in ("id", "source", "subject", "type", "time"):
        lines.append(f"    {name + ':':9}{doc.get(name, '-')}")
    for name, value in doc.items():  # CloudEvents extensions
        if name not in ("id", "source", "subject", "type", "time", "data", "specversion", "datacontenttype"):
            lines.append(f"    {name + ':':9}{value}")
    if role == "fan-out item" and isinstance(data, dict) and isinstance(data.get("files"), list):
        where = f"s3://{data.get('bucket', '?')}/{data.get('prefix', '')}"
        lines.append(f"    files:   {_plural(len(data['files']), 'file')} under {where}")
        lines.extend(f"             {name}" for name in data["files"])
    if event.truncated:
        kept = f"the event's JSON was {event.size} bytes; the beginning of the data is kept"
        lines.append(f"    data (truncated: {kept}):")
        lines.extend(f"      {line}" for line in str(data).splitlines() or [""])
    else:
        lines.append("    data:")
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
        lines.extend(f"      {line}" for line in text.splitlines())
    return lines


def lineage_lines(lineage: FiringLineage) -> list[str]:
    """``lineage`` as text: the firing, what it created, its events in full, related firings."""
    rec = lineage.record
    lines = [
        f"firing {rec.key}",
        f"  sensor/trigger: {rec.sensor}/{rec.trigger}",
        f"  status:         {rec.status} ({_plural(rec.attempts, 'attempt')})",
        f"  started:        {_when(rec.started_at)}",
        f"  finished:       {_when(rec.finished_at)}",
        f"  result:         {rec.result}",
    ]
    lines.extend(f"  created:        {obj}" for obj in lineage.objects)
    if lineage.letter is not None:
        lines.append(f"  dead letter:    {lineage.letter.id} (`triggergate dlq show {lineage.letter.id}`)")
    lines.append("")
    lines.append(f"events ({len(lineage.events)}):")
    for event, role in zip(lineage.events, lineage.roles(), strict=True):
        lines.extend(_event_lines(event, role))
    for dep, event_id in lineage.not_kept:
        name = dep or "(no dependency name)"
        lines.append(f"  {name}: event {event_id} was not kept (recorded by a triggergate before lineage)")
    if lineage.related:
        lines.append("")
        lines.append(f"other firings that used these events ({len(lineage.related)}):")
        lines.extend(_firing_rows(lineage.related[:RELATED_SHOWN]))
        if len(lineage.related) > RELATED_SHOWN:
            lines.append(f"  ... and {len(lineage.related) - RELATED_SHOWN} more (--json lists them all)")
    return lines


def _no_firing(key: str, state_dir: Path) -> str:
    return f"no firing with key {key} in {state_dir / 'state.db'}; " + replica_hint(
        state_dir, f"firing {key}"
    )


@lineage_app.command("event")
def lineage_event(
    event_id: Annotated[str, typer.Argument(metavar="EVENT_ID", help="A CloudEvent id (as on the bus).")],
    state_dir: StateDir = Path(".triggergate"),
    as_json: AsJson = False,
) -> None:
    """Every firing that used an event, and the dead letters that hold it.

    Per firing: finish time, sensor/trigger, status, attempts, firing key and result (which names
    the object it created, e.g. `created Workflow argo/run-align-x`).
    """
    answer = _with_store(state_dir, lambda store: event_lineage(store, event_id))
    kept, firings, letters = answer.kept, answer.firings, answer.dead_letters
    if not firings and not letters:
        _fail(
            f"no firing used event {event_id} in {state_dir / 'state.db'}; an event that started "
            "nothing yet may be waiting on the bus for its other dependencies, or did not pass the "
            "filters; " + replica_hint(state_dir, f"event {event_id}")
        )
    if as_json:
        _print_json(
            {
                "event_id": event_id,
                "event": None if kept is None else kept.event,
                "truncated": None if kept is None else kept.truncated,
                "firings": [_firing_json(rec) for rec in firings],
                "dead_letters": [_letter_json(letter) for letter in letters],
            }
        )
        return
    if kept is None:
        typer.echo(f"event {event_id} (not kept: recorded by a triggergate before lineage)")
    else:
        doc = kept.event
        typer.echo(
            f"event {event_id}: {doc.get('type', '?')} from {doc.get('source', '?')}/"
            f"{doc.get('subject', '?')} at {doc.get('time', '?')}"
        )
        data = doc.get("data")
        text = data if kept.truncated else orjson.dumps(data).decode()
        typer.echo(f"  data: {_short(str(text), 300)}")
    typer.echo("")
    typer.echo(f"firings that used it ({len(firings)}):")
    for line in _firing_rows(firings):
        typer.echo(line)
    if letters:
        typer.echo("")
        typer.echo(f"dead letters holding it ({len(letters)}):")
        rows = [
            [
                letter.id,
                _when(letter.created_at),
                f"{letter.sensor}/{letter.trigger}",
                str(letter.attempts),
                _short(letter.reason),
            ]
            for letter in letters
        ]
        for line in _table(["ID", "CREATED", "SENSOR/TRIGGER", "ATTEMPTS", "REASON"], rows):
            typer.echo(line)
    typer.echo("")
    typer.echo("`triggergate lineage firing FIRING` shows a firing with its events in full")


@lineage_app.command("firing")
def lineage_firing(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="A firing key (the triggergate.io/firing label).")
    ],
    state_dir: StateDir = Path(".triggergate"),
    as_json: AsJson = False,
) -> None:
    """A firing with its events in full, and the objects it created.

    Per event: dependency, id, source, subject, type, time, data (for a fan-out item: the marker
    event and the item with its sample and files). Also the other firings of the same events (a
    marker's items).
    """
    lineage = _with_store(state_dir, lambda store: firing_lineage(store, key, state_dir / "outbox"))
    if lineage is None:
        _fail(_no_firing(key, state_dir))
    if as_json:
        _print_json(lineage_json(lineage))
        return
    for line in lineage_lines(lineage):
        typer.echo(line)


@lineage_app.command("object")
def lineage_object(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAMESPACE/NAME]", help="The object, looked up in the outbox, then the cluster."
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "-f", "--file", help="Read the object from this file (`kubectl get ... -o yaml`; - is stdin)."
        ),
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="The object's kind.")] = "Workflow",
    api_version: Annotated[
        str | None,
        typer.Option("--api-version", help="The object's apiVersion (known for Workflow, Job, Pod, ...)."),
    ] = None,
    kube_context: KubeContext = None,
    kubeconfig: Kubeconfig = None,
    state_dir: StateDir = Path(".triggergate"),
    as_json: AsJson = False,
) -> None:
    """The firing behind an object (its triggergate.io/firing label), with its events in full.

    NAMESPACE/NAME is looked up in the outbox of --state-dir, then in the cluster (--kubeconfig,
    --kube-context, or the service account when run in the gateway's pod). With -f, the objects in
    the file are answered (a JSON list with --json when there are several).
    """
    if (ref is None) == (file is None):
        typer.echo("give either NAMESPACE/NAME or -f FILE", err=True)
        raise typer.Exit(code=2)
    try:
        if file is not None:
            found = objects_in_file(file)
        else:
            assert ref is not None
            outbox = state_dir / "outbox"
            read = read_object(
                ref, kind, api_version, outbox, kubeconfig=kubeconfig, kube_context=kube_context
            )
            found = [asyncio.run(read)]
    except LineageError as exc:
        _fail(str(exc))

    async def load(store: SqliteStore) -> list[ObjectLineage]:
        return [await object_lineage(store, one, state_dir) for one in found]

    answers = _with_store(state_dir, load)
    failed = False
    docs = []
    for index, answer in enumerate(answers):
        summary, lineage = answer.summary, answer.lineage
        if answer.problem is not None:
            failed = True
            typer.echo(answer.problem, err=True)
        if as_json:
            docs.append(
                {"object": _object_json(summary), **({} if lineage is None else lineage_json(lineage))}
            )
            continue
        if lineage is None:
            continue
        if index:
            typer.echo("")
        typer.echo(f"{summary.kind} {summary.where} (from {summary.origin})")
        typer.echo(f"  {FIRING_LABEL}: {summary.firing}")
        typer.echo(f"  {EVENT_IDS_ANNOTATION}: {', '.join(summary.event_ids) or '-'}")
        if summary.last_firing:
            typer.echo(f"  last changed by firing {summary.last_firing} ({LAST_FIRING_ANNOTATION})")
        for line in lineage_lines(lineage):
            typer.echo(line)
    if as_json:
        _print_json(docs[0] if len(docs) == 1 else docs)
    raise typer.Exit(code=1 if failed else 0)
