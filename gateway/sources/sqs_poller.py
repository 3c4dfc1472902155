"""The SQS long-poll loop shared by the ``s3`` and ``sqs`` sources.

:class:`SqsPoller` receives up to 10 messages at a time, hands each to the source's handler
(concurrently; one after the other for a FIFO queue, so that events keep the queue's order) and
then settles each message by the handler's :class:`Outcome`:

* ``DELETE``: its events are durable (or it was dead-lettered or deliberately dropped): deleted
  in one batch. A crash before the delete only causes a redelivery, which the deterministic
  event ids turn into duplicates that the bus drops.
* ``RETRY``: the events could not be made durable (the bus failed): the message is made visible
  again after ``retry_delay`` seconds (``ChangeMessageVisibility``) and the poller pauses as long,
  so a failing bus is not hammered.
* ``KEEP``: left alone; it comes back after its visibility timeout (or goes to the queue's own
  dead-letter queue after ``maxReceiveCount`` receives, when the queue has a redrive policy).

AWS errors (network, throttling, a queue that does not exist yet) are logged and retried with a
backoff of 1 s doubling up to a minute; the poller never gives up. ``stop()`` abandons a poll in
flight (its messages are handed back to the queue, see :mod:`gateway.aws`), lets the messages
being handled finish and be settled, and closes the AWS client.

Also here, because both SQS sources need them: :class:`DeadLetters` (where unusable messages are
kept) and :func:`aws_connection` (an entry's AWS settings with its keys read from the secrets).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol, TypeVar

from gateway.aws import AwsClient, AwsConnection, AwsError, SqsMessage
from gateway.errors import ConfigError
from gateway.secrets import SecretStore
from gateway.sources.base import ReceivedCounts, Source
from sensors.spec import SecretKeySelector

logger = logging.getLogger("triggergate.sqs")

T = TypeVar("T")


class Outcome(enum.Enum):
    """How the poller settles a message once its handler returned (see the module doc)."""

    DELETE = "delete"
    RETRY = "retry"
    KEEP = "keep"


Handler = Callable[[SqsMessage], Awaitable[Outcome]]


class DeadLetters(Protocol):
    """Where a source records upstream messages it cannot use (``gateway.store.SqliteStore``)."""

    async def source_dead_letter(
        self, source: str, reason: str, raw: bytes | str, *, letter_id: str | None = None
    ) -> str: ...


def _secret(secrets: SecretStore | None, selector: SecretKeySelector | None, where: str) -> str | None:
    if selector is None:
        return None
    if secrets is None:
        raise ConfigError(
            [f"{where}: {selector.name}/{selector.key} is set but no secrets directory is configured"]
        )
    value = secrets.lookup(selector) if selector.optional else secrets.get(selector)
    return value.reveal() if value is not None else None


def aws_connection(
    secrets: SecretStore | None,
    where: str,
    *,
    region: str | None,
    endpoint: str | None,
    access_key: SecretKeySelector | None,
    secret_key: SecretKeySelector | None,
    session_token: SecretKeySelector | None,
) -> AwsConnection:
    """The :class:`AwsConnection` of a manifest entry: keys read from the secrets directory
    (``where`` names the entry in errors), or None to use boto3's environment chain."""
    return AwsConnection(
        region=region,
        endpoint=endpoint or None,
        access_key=_secret(secrets, access_key, f"{where}.accessKey"),
        secret_key=_secret(secrets, secret_key, f"{where}.secretKey"),
        session_token=_secret(secrets, session_token, f"{where}.sessionToken"),
    )


class _Stopped(Exception):
    pass


class SqsPoller(Source):
    """Long-polls one queue for one source entry and settles every message by its outcome."""

    def __init__(
        self,
        name: str,
        client: AwsClient,
        queue: str,
        handler: Handler,
        *,
        account_id: str | None = None,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
        retry_delay: float = 5.0,
        max_backoff: float = 60.0,
    ) -> None:
        self._name = name
        self.client = client
        self.queue = queue
        self.handler = handler
        self.account_id = account_id
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        self.retry_delay = retry_delay
        self.max_backoff = max_backoff
        self.queue_url: str | None = None
        self.received = 0
        self.deleted = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self._name

    def event_counts(self) -> Iterable[ReceivedCounts]:
        """The handler's counts (``SqsHandler``, ``S3QueueHandler``), for ``/metrics``."""
        counts = getattr(self.handler, "event_counts", None)
        return counts() if callable(counts) else ()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)
            logger.info("%s: polling %s (%s)", self._name, self.queue, self.client.connection.describe())

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except Exception:
                logger.exception("%s: the poll loop failed", self._name)
        await self.client.close()

    async def _until_stopped(self, coro: Coroutine[Any, Any, T]) -> T:
        """``await coro`` unless ``stop()`` comes first (then it is cancelled and _Stopped raised)."""
        work = asyncio.ensure_future(coro)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not work.done():
            work.cancel()
            try:
                await work
            except (asyncio.CancelledError, Exception):
                pass
            raise _Stopped
        return work.result()

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                if self.queue_url is None:
                    self.queue_url = await self._until_stopped(
                        self.client.queue_url(self.queue, self.account_id)
                    )
                messages = await self._until_stopped(
                    self.client.receive_messages(
                        self.queue_url,
                        max_messages=10,
                        wait_seconds=self.wait_seconds,
                        visibility_timeout=self.visibility_timeout,
                    )
                )
            except _Stopped:
                break
            except AwsError as exc:
                level = logging.WARNING if exc.retriable else logging.ERROR
                logger.log(level, "%s: %s; trying again in %.0f s", self._name, exc, backoff)
                await self._pause(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 1.0
            if messages:
                self.received += len(messages)
                await self._settle(self.queue_url, messages)

    async def _handle(self, message: SqsMessage) -> Outcome:
        try:
            return await self.handler(message)
        except Exception:
            logger.exception(
                "%s: handling message %s failed unexpectedly; it will be received again",
                self._name,
                message.message_id,
            )
            return Outcome.RETRY

    async def _outcomes(self, queue_url: str, messages: list[SqsMessage]) -> list[Outcome]:
        """Handle a batch: concurrently, or in order for a FIFO queue (where the first message that
        must be retried holds back the rest of the batch, so that nothing overtakes it)."""
        if not queue_url.endswith(".fifo"):
            return list(await asyncio.gather(*(self._handle(m) for m in messages)))
        outcomes: list[Outcome] = []
        for message in messages:
            if outcomes and outcomes[-1] is Outcome.RETRY:
                outcomes.append(Outcome.RETRY)
            else:
                outcomes.append(await self._handle(message))
        return outcomes

    async def _settle(self, queue_url: str, messages: list[SqsMessage]) -> None:
        outcomes = await self._outcomes(queue_url, messages)
        delete = [m.receipt_handle for m, o in zip(messages, outcomes, strict=True) if o is Outcome.DELETE]
        retry = [m.receipt_handle for m, o in zip(messages, outcomes, strict=True) if o is Outcome.RETRY]
        if delete:
            try:
                failed = await self.client.delete_messages(queue_url, delete)
            except AwsError as exc:
                failed = delete
                logger.warning(
                    "%s: could not delete %d message(s): %s; they will be received again and their "
                    "events dropped as duplicates",
                    self._name,
                    len(delete),
                    exc,
                )
            self.deleted += len(delete) - len(failed)
        if retry:
            try:
                await self.client.change_visibility(queue_url, retry, max(0, round(self.retry_delay)))
            except AwsError as exc:
                logger.warning(
                    "%s: could not make %d message(s) visible again: %s", self._name, len(retry), exc
                )
            await self._pause(self.retry_delay)
