"""The only module that imports boto3/botocore: a small async facade over SQS, S3 and SNS.

boto3 is synchronous. Every call runs on a bounded pool of *daemon* threads owned by one
:class:`AwsClient` (one per connection settings), so the event loop never blocks and a 20-second
SQS long poll in flight never holds up process exit. Library exceptions are translated here into
:class:`AwsError`, whose ``retriable`` says whether trying again can help (throttling, 5xx,
connection trouble) or not (missing credentials or region, no such queue or bucket, access
denied); the cause is chained.

What the sources need, and nothing else:

* SQS: :meth:`AwsClient.queue_url` (a name -> URL; a URL is returned as is),
  :meth:`~AwsClient.receive_messages` (long poll), :meth:`~AwsClient.delete_messages` (batch),
  :meth:`~AwsClient.change_visibility`.
* S3: :meth:`~AwsClient.list_objects` (``ListObjectsV2`` pages), :meth:`~AwsClient.head_object`
  and :meth:`~AwsClient.get_object` (trigger artifacts).
* SNS: :func:`confirm_subscription` (GET of a ``SubscribeURL`` whose host is allowed, see
  :func:`subscribe_url_allowed`).

A receive whose caller was cancelled (a source stopping) still completes on its thread; any
messages it got are handed back to the queue at once (visibility 0) instead of staying invisible
until their visibility timeout.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import httpx

from gateway.errors import GatewayError

logger = logging.getLogger("triggergate.aws")

T = TypeVar("T")

_RETRIABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_SQS_URL = re.compile(r"https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?/", re.IGNORECASE)
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?", re.IGNORECASE)


class AwsError(GatewayError):
    """An AWS call failed. ``code`` is AWS's error code when there is one (``AccessDenied``)."""

    def __init__(self, message: str, *, retriable: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.code = code


@dataclass(frozen=True)
class AwsConnection:
    """Where and as whom to call AWS. Keys left out -> boto3's environment chain
    (``AWS_ACCESS_KEY_ID``..., ``~/.aws``, instance roles); ``endpoint`` for S3-compatible stores,
    moto or LocalStack."""

    region: str | None = None
    endpoint: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        where = self.endpoint or "AWS"
        who = "static keys" if self.access_key else "credentials from the environment"
        return f"{where} (region {self.region or 'from the environment'}, {who})"


@dataclass(frozen=True, slots=True)
class SqsMessage:
    """One received SQS message. ``message_attributes`` maps names to ``{DataType, StringValue,
    BinaryValue, ...}`` as SQS returns them (binary values as bytes)."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One object of a ``ListObjectsV2`` page (ETag without quotes, time in UTC)."""

    key: str
    size: int | None
    etag: str | None
    last_modified: datetime
    storage_class: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectHead:
    """What ``HeadObject`` says about an object (ETag without quotes)."""

    etag: str | None
    version_id: str | None
    size: int | None
    last_modified: datetime | None


def region_from_queue_url(url: str) -> str | None:
    """``https://sqs.eu-west-1.amazonaws.com/123/q`` -> ``eu-west-1``; None for other URLs."""
    match = _SQS_URL.match(url)
    return match.group(1) if match else None


def is_queue_url(queue_name: str) -> bool:
    return queue_name.startswith(("http://", "https://"))


# --------------------------------------------------------------------------- threads


class _DaemonPool(Executor):
    """At most ``workers`` daemon threads; calls queue up beyond that.

    Daemon threads, so that a long poll in flight does not delay process exit (the standard
    ``ThreadPoolExecutor`` joins its threads at exit).
    """

    def __init__(self, workers: int, name: str) -> None:
        self._workers = max(1, workers)
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if kwargs:
            raise TypeError("pass a closure: keyword arguments are not forwarded")
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self._name}: the AWS client is closed")
            self._queue.put((future, fn, args))
            if len(self._threads) < self._workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()


# --------------------------------------------------------------------------- errors


def _translate(exc: Exception, what: str) -> AwsError:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or None
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = error.get("Message") or str(exc)
        retriable = status >= 500 or status == 429 or (code in _RETRIABLE_CODES)
        return AwsError(f"{what}: {code or status}: {message}", retriable=retriable, code=code)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return AwsError(
            f"{what}: no AWS credentials: set accessKey/secretKey secrets in the manifest, or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile or role) in the environment",
            retriable=False,
            code="NoCredentials",
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return AwsError(
            f"{what}: no AWS region: set region in the manifest or AWS_REGION in the environment",
            retriable=False,
            code="NoRegion",
        )
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return AwsError(f"{what}: invalid request: {exc}", retriable=False, code="ParamValidation")
    if isinstance(exc, botocore.exceptions.BotoCoreError | OSError):
        return AwsError(f"{what}: {exc}", retriable=True)
    return AwsError(f"{what}: unexpected {type(exc).__name__}: {exc}", retriable=False)


# --------------------------------------------------------------------------- the client


class AwsClient:
    """SQS and S3 calls for one :class:`AwsConnection`, on its own bounded daemon-thread pool.

    ``read_timeout`` must exceed the longest SQS long poll (20 s). Safe to share between sources
    that use the same connection. ``close()`` refuses further calls; calls in flight finish on
    their threads.
    """

    def __init__(
        self, connection: AwsConnection, *, workers: int = 4, read_timeout: float = 35.0, name: str = "aws"
    ) -> None:
        self.connection = connection
        self._pool = _DaemonPool(workers, name)
        self._config = botocore.config.Config(
            connect_timeout=5,
            read_timeout=read_timeout,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=max(1, workers),
            s3={"addressing_style": "path"} if connection.endpoint else None,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        """The boto3 client for ``service`` (made once, on a worker thread; clients are thread-safe)."""
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                conn = self.connection
                session = boto3.session.Session(
                    aws_access_key_id=conn.access_key,
                    aws_secret_access_key=conn.secret_key,
                    aws_session_token=conn.session_token,
                    region_name=conn.region,
                )
                client = session.client(service, endpoint_url=conn.endpoint, config=self._config)
                self._clients[service] = client
            return client

    def _invoke(self, what: str, service: str, method: str, kwargs: dict[str, Any]) -> Any:
        """Runs on a worker thread: one boto3 call, its exception translated."""
        try:
            return getattr(self._client(service), method)(**kwargs)
        except Exception as exc:
            raise _translate(exc, what) from exc

    async def _call(self, what: str, service: str, method: str, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._invoke, what, service, method, kwargs)

    # -- SQS --------------------------------------------------------------------------------------

    async def queue_url(self, queue_name: str, account_id: str | None = None) -> str:
        """The URL of ``queue_name`` (returned unchanged when it already is a URL)."""
        if is_queue_url(queue_name):
            return queue_name
        kwargs: dict[str, Any] = {"QueueName": queue_name}
        if account_id:
            kwargs["QueueOwnerAWSAccountId"] = account_id
        result = await self._call(f"SQS GetQueueUrl {queue_name!r}", "sqs", "get_queue_url", **kwargs)
        return str(result["QueueUrl"])

    async def receive_messages(
        self,
        queue_url: str,
        *,
        max_messages: int = 10,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
    ) -> list[SqsMessage]:
        """One long poll (up to ``wait_seconds``); at most ``max_messages`` (1-10) messages."""
        kwargs: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max(1, min(10, max_messages)),
            "WaitTimeSeconds": max(0, min(20, wait_seconds)),
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout

        def receive() -> list[SqsMessage]:
            response = self._invoke(f"SQS ReceiveMessage {queue_url}", "sqs", "receive_message", kwargs)
            return [_sqs_message(m) for m in response.get("Messages", [])]

        future = self._pool.submit(receive)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.add_done_callback(lambda f: self._hand_back(queue_url, f))
            raise

    def _hand_back(self, queue_url: str, future: Future[list[SqsMessage]]) -> None:
        """Messages received by a poll nobody waits for any more: make them visible again now."""
        if future.cancelled() or future.exception() is not None:
            return
        messages = future.result()
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        try:
            self._client("sqs").change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as exc:  # best effort: they come back after their visibility timeout
            logger.debug("could not hand %d message(s) back to %s: %s", len(messages), queue_url, exc)

    async def delete_messages(self, queue_url: str, receipt_handles: Sequence[str]) -> list[str]:
        """Delete messages (batches of 10); returns the receipt handles that could not be deleted."""
        failed: list[str] = []
        handles = list(receipt_handles)
        for start in range(0, len(handles), 10):
            chunk = handles[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
            result = await self._call(
                f"SQS DeleteMessageBatch {queue_url}",
                "sqs",
                "delete_message_batch",
                QueueUrl=queue_url,
                Entries=entries,
            )
            for item in result.get("Failed", []) or []:
                failed.append(chunk[int(item["Id"])])
        return failed

    async def change_visibility(self, queue_url: str, receipt_handles: Sequence[str], seconds: int) -> None:
        """Set the visibility timeout of received messages (0: visible again at once)."""
        handles = list(receipt_handles)
        for start in range(0, len(handles), 10):
            chunk = handles[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": seconds} for i, h in enumerate(chunk)
            ]
            await self._call(
                f"SQS ChangeMessageVisibilityBatch {queue_url}",
                "sqs",
                "change_message_visibility_batch",
                QueueUrl=queue_url,
                Entries=entries,
            )

    # -- S3 ---------------------------------------------------------------------------------------

    async def list_objects(
        self, bucket: str, prefix: str = "", *, page_size: int = 1000
    ) -> AsyncIterator[list[ListedObject]]:
        """The objects under ``prefix``, one ``ListObjectsV2`` page at a time."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self._call(
                f"S3 ListObjectsV2 s3://{bucket}/{prefix}", "s3", "list_objects_v2", **kwargs
            )
            yield [_listed(item) for item in page.get("Contents", []) or []]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def head_object(self, bucket: str, key: str) -> ObjectHead | None:
        """The object's head, or None when it does not exist (any more)."""
        try:
            head = await self._call(
                f"S3 HeadObject s3://{bucket}/{key}", "s3", "head_object", Bucket=bucket, Key=key
            )
        except AwsError as exc:
            if exc.code in _NOT_FOUND_CODES:
                return None
            raise
        return ObjectHead(
            etag=_strip_etag(head.get("ETag")),
            version_id=head.get("VersionId") or None,
            size=head.get("ContentLength"),
            last_modified=_utc(head.get("LastModified")),
        )

    async def get_object(self, bucket: str, key: str) -> bytes:
        """The whole content of an object (for small objects: trigger artifacts)."""

        def download() -> bytes:
            what = f"S3 GetObject s3://{bucket}/{key}"
            body = self._invoke(what, "s3", "get_object", {"Bucket": bucket, "Key": key})["Body"]
            try:
                return bytes(body.read())
            except Exception as exc:
                raise _translate(exc, what) from exc
            finally:
                body.close()

        return await asyncio.wrap_future(self._pool.submit(download))

    async def close(self) -> None:
        self._pool.shutdown(wait=False)


def _sqs_message(raw: dict[str, Any]) -> SqsMessage:
    return SqsMessage(
        message_id=str(raw.get("MessageId", "")),
        receipt_handle=str(raw.get("ReceiptHandle", "")),
        body=str(raw.get("Body", "")),
        attributes={str(k): str(v) for k, v in (raw.get("Attributes") or {}).items()},
        message_attributes={str(k): dict(v) for k, v in (raw.get("MessageAttributes") or {}).items()},
    )


def _listed(item: dict[str, Any]) -> ListedObject:
    return ListedObject(
        key=str(item["Key"]),
        size=item.get("Size"),
        etag=_strip_etag(item.get("ETag")),
        last_modified=_utc(item.get("LastModified")) or datetime.fromtimestamp(0, UTC),
        storage_class=item.get("StorageClass"),
    )


def _strip_etag(value: Any) -> str | None:
    if not value:
        return None
    return str(value).strip().strip('"') or None


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


# --------------------------------------------------------------------------- SNS


def subscribe_url_allowed(url: str, allowed_hosts: Sequence[str] = ()) -> bool:
    """Whether the gateway may GET ``url`` to confirm an SNS subscription.

    An AWS SNS endpoint over https (``sns.<region>.amazonaws.com``, ``.com.cn``), or a host
    (``host`` or ``host:port``) listed in ``allowed_hosts``. Anything else is refused, so that a
    forged confirmation cannot make the gateway fetch arbitrary URLs.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if parts.scheme == "https" and _SNS_HOST.fullmatch(host):
        return True
    allowed = {h.lower() for h in allowed_hosts}
    return host in allowed or (port is not None and f"{host}:{port}" in allowed)


async def confirm_subscription(url: str, *, timeout_seconds: float = 10.0) -> None:
    """Confirm an SNS subscription by GET-ing its ``SubscribeURL``; raises :class:`AwsError`."""
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise AwsError(f"SNS subscription confirmation: {exc}", retriable=True) from exc
    if response.status_code >= 300:
        raise AwsError(
            f"SNS subscription confirmation answered HTTP {response.status_code}",
            retriable=response.status_code >= 500 or response.status_code == 429,
            code=str(response.status_code),
        )
