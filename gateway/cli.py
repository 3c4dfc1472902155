"""The ``triggergate`` command line: a typer app; each command is a small function over the gateway.

Commands:
    run PATH...        run sources, the bus (embedded, or Kafka with --bus), sensors and triggers
    validate PATH...   load and check manifests (and their secrets) without starting anything
    dlq ...            list, show and replay dead letters (gateway/cli_state.py)
    outbox list        objects written instead of created (dry run, or no cluster)
    lineage ...        from an event to the firings and objects it started, and the reverse
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer

from gateway.cli_state import dlq_app, lineage_app, outbox_app
from gateway.config import ManifestError, Manifests, event_bus_url, load_manifests
from gateway.errors import ConfigError
from gateway.k8s import KubeError
from sensors.spec import EventSource, Sensor, Trigger

app = typer.Typer(
    name="triggergate",
    help="Event-driven trigger gateway for Argo Events EventSource and Sensor manifests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


BUS_ENV = "TRIGGERGATE_BUS"
BUS_CHOICES = (
    "sqlite (embedded, one process), memory (not durable; tests) or "
    "kafka://host:port[,host:port]/<topic>?consumerGroup=<prefix>[&partitions=N&sessionTimeout=10s...]"
)


app.add_typer(dlq_app)
app.add_typer(outbox_app)
app.add_typer(lineage_app)


@app.callback()
def _root() -> None:
    """Event-driven trigger gateway for Argo Events EventSource and Sensor manifests."""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _safe_url(url: str) -> str:
    """``url`` without user:password, so that credentials in a URL never reach the terminal."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable url)"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _describe_trigger(trigger: Trigger) -> str:
    template = trigger.template
    text = f"trigger '{trigger.name}': {template.kind}"
    if template.http is not None:
        text += f" {template.http.method} {_safe_url(template.http.url)}"
    if template.argo_workflow is not None:
        text += f" {template.argo_workflow.operation} (source: {template.argo_workflow.source.kind})"
    if template.k8s is not None:
        text += f" {template.k8s.operation} (source: {template.k8s.source.kind})"
    if template.conditions:
        text += f" (conditions: {template.conditions})"
    return text


def _event_source_lines(source: EventSource) -> list[str]:
    lines = []
    for name, hook in source.spec.webhook.items():
        tls = " (TLS)" if hook.server_cert_secret is not None else ""
        auth = " (bearer token)" if hook.auth_secret is not None else ""
        lines.append(f"  event '{name}': webhook {hook.method} :{hook.port}{hook.endpoint}{tls}{auth}")
    for name, s3 in source.spec.s3.items():
        inputs = []
        if s3.webhook is not None:
            inputs.append(f"webhook {s3.webhook.method} :{s3.webhook.port}{s3.webhook.endpoint}")
        if s3.sqs is not None:
            inputs.append(f"sqs {s3.sqs.queue}")
        if s3.reconcile is not None:
            inputs.append(f"reconcile every {s3.reconcile.interval}")
        lines.append(f"  event '{name}': s3 {', '.join(inputs)}")
    for name, queue in source.spec.sqs.items():
        lines.append(f"  event '{name}': sqs {queue.queue} ({queue.region})")
    return lines


def _sensor_lines(sensor: Sensor) -> list[str]:
    lines = [
        f"  dependency '{dep.name}': EventSource '{dep.event_source_name}' event '{dep.event_name}'"
        for dep in sensor.spec.dependencies
    ]
    lines.extend(f"  {_describe_trigger(trigger)}" for trigger in sensor.spec.triggers)
    return lines


def _summary(manifests: Manifests) -> list[str]:
    lines = [
        f"OK: {_plural(len(manifests.event_sources), 'EventSource')} and "
        f"{_plural(len(manifests.sensors), 'Sensor')} from {_plural(len(manifests.files), 'file')}"
    ]
    if manifests.event_bus is not None:
        meta = manifests.event_bus.model.metadata
        url = _safe_url(event_bus_url(manifests.event_bus.model))
        lines.append(f"EventBus '{meta.name}' (namespace {meta.namespace}) at {manifests.event_bus.origin}")
        lines.append(f"  bus: {url} (used by `triggergate run` without --bus)")
    for source in manifests.event_sources:
        meta = source.model.metadata
        lines.append(f"EventSource '{meta.name}' (namespace {meta.namespace}) at {source.origin}")
        lines.extend(_event_source_lines(source.model))
    for sensor in manifests.sensors:
        meta = sensor.model.metadata
        lines.append(f"Sensor '{meta.name}' (namespace {meta.namespace}) at {sensor.origin}")
        lines.extend(_sensor_lines(sensor.model))
    return lines


@app.command()
def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Manifest files, or directories of *.yaml, *.yml and *.json files."),
    ],
    secrets_dir: Annotated[
        Path,
        typer.Option("--secrets-dir", help="Directory of secrets, read as <dir>/<secret-name>/<key>."),
    ] = Path("secrets"),
    no_secrets: Annotated[
        bool,
        typer.Option("--no-secrets", help="Do not check that referenced secrets exist."),
    ] = False,
) -> None:
    """Load and check manifests; print every problem (exit 1) or a summary of what was loaded (exit 0)."""
    try:
        manifests = load_manifests(paths, secrets_dir=None if no_secrets else secrets_dir)
    except ConfigError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        count = _plural(len(exc.problems), "problem")
        if isinstance(exc, ManifestError):
            count += f" in {_plural(len(exc.files), 'file')}"
        typer.echo(count, err=True)
        raise typer.Exit(code=1) from None
    for line in _summary(manifests):
        typer.echo(line)
    for warning in manifests.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for note in manifests.notes:
        typer.echo(f"note: {note}", err=True)
    if no_secrets:
        typer.echo("note: secrets were not checked (--no-secrets)", err=True)


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def run(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Manifest files, or directories of *.yaml, *.yml and *.json files."),
    ],
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Where the durable bus and the firing records live.")
    ] = Path(".triggergate"),
    secrets_dir: Annotated[
        Path,
        typer.Option("--secrets-dir", help="Directory of secrets, read as <dir>/<secret-name>/<key>."),
    ] = Path("secrets"),
    log_format: Annotated[
        LogFormat, typer.Option("--log-format", help="text or json lines.")
    ] = LogFormat.text,
    log_level: Annotated[LogLevel, typer.Option("--log-level")] = LogLevel.info,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            envvar=BUS_ENV,
            show_default=False,
            help=f"The event bus: {BUS_CHOICES}. Default: an EventBus manifest among PATHS, else sqlite.",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address the webhook servers bind to.")] = "0.0.0.0",
    max_in_flight: Annotated[
        int, typer.Option("--max-in-flight", min=1, help="Concurrent firings per sensor.")
    ] = 256,
    shutdown_grace: Annotated[
        float,
        typer.Option("--shutdown-grace", min=0, help="Seconds to let in-flight firings finish on stop."),
    ] = 30.0,
    dedup_window: Annotated[
        float,
        typer.Option("--dedup-window", min=0, help="Seconds within which a repeated event id is dropped."),
    ] = 86400.0,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Write Kubernetes objects to <state-dir>/outbox instead of creating them."
        ),
    ] = False,
    kube_context: Annotated[
        str | None, typer.Option("--kube-context", help="The kubeconfig context to use.")
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", help="Kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            show_default=False,
            help="Also serve GET /metrics and GET /health on this port (every webhook port serves "
            "/metrics too); for a gateway without webhook sources, or to scrape another port.",
        ),
    ] = None,
) -> None:
    """Run everything in one process until SIGTERM or SIGINT (then finish what is in flight, exit 0)."""
    from gateway.logs import setup_logging
    from gateway.runtime import Settings, serve
    from gateway.secrets import RedactingFilter, SecretStore

    secrets = SecretStore(secrets_dir)
    setup_logging(log_format.value, log_level.value, RedactingFilter(secrets))
    log = logging.getLogger("triggergate")
    try:
        manifests = load_manifests(paths, secrets_dir=secrets_dir)
    except ConfigError as exc:
        for line in exc.problems:
            log.error("%s", line)
        log.error(
            "not starting: %s; check them with `triggergate validate`", _plural(len(exc.problems), "problem")
        )
        raise typer.Exit(code=1) from None
    for warning in manifests.warnings:
        log.warning("%s", warning)
    for note in manifests.notes:
        log.info("%s", note)
    try:
        bus_url = select_bus(bus, manifests)
    except ConfigError as exc:
        for line in exc.problems:
            log.error("%s", line)
        log.error("not starting: the bus is not usable")
        raise typer.Exit(code=1) from None
    settings = Settings(
        state_dir=state_dir,
        bus=bus_url,
        secrets_dir=secrets_dir,
        host=host,
        max_in_flight=max_in_flight,
        shutdown_grace=shutdown_grace,
        dedup_window=dedup_window,
        dry_run=dry_run,
        kube_context=kube_context,
        kubeconfig=kubeconfig,
        metrics_port=metrics_port,
    )
    try:
        code = _event_loop_runner()(serve(manifests, settings, secrets))
    except (OSError, KubeError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        raise typer.Exit(code=1) from None
    raise typer.Exit(code=code)


def select_bus(flag: str | None, manifests: Manifests) -> str:
    """The bus URL to run on: ``--bus`` (or ``$TRIGGERGATE_BUS``), else the loaded ``EventBus``,
    else the embedded ``sqlite``. Raises :class:`ConfigError` saying where the bad value came from
    and what is allowed."""
    from gateway.bus import parse_bus_url

    log = logging.getLogger("triggergate")
    event_bus = manifests.event_bus
    if flag is not None:
        where = f"--bus (or ${BUS_ENV}) {_safe_url(flag)!r}"
        url = flag
        if event_bus is not None:
            log.info("--bus overrides the EventBus '%s' at %s", event_bus.name, event_bus.origin)
    elif event_bus is not None:
        where = f"{event_bus.origin.file}:{event_bus.origin.line}: EventBus '{event_bus.name}'"
        url = event_bus_url(event_bus.model)
        log.info("bus from the EventBus '%s' at %s", event_bus.name, event_bus.origin)
    else:
        return "sqlite"
    try:
        parse_bus_url(url)
    except ValueError as exc:
        safe = _safe_url(url)
        text = str(exc).replace(url, safe)  # no credentials in the message
        prefix = f"--bus {safe!r}"  # the parser names the flag; say where the value came from instead
        rest = text[len(prefix) :] if text.startswith(prefix) else f": {text}"
        if "sqlite, memory" not in rest:
            rest += f"; allowed: {BUS_CHOICES}"
        raise ConfigError([f"{where}{rest}"]) from None
    return url


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    """uvloop when installed (it comes with uvicorn[standard]), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    run: Callable[[Coroutine[Any, Any, int]], int] = uvloop.run
    return run


def main() -> None:
    """Entry point of the ``triggergate`` console script."""
    app()
