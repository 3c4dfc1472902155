"""gateway.aws against a real moto server: SQS, S3 listing and objects, error translation."""

# ruff: noqa: F811  (pytest fixtures imported from moto_support are redefined as arguments)
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.aws import AwsClient, AwsConnection, AwsError
from gateway.errors import TriggerError
from gateway.secrets import SecretStore
from gateway.triggers.artifacts import SourceFetcher
from gateway.triggers.base import TriggerContext
from sensors.spec import ArtifactLocation
from tests.integration.moto_support import REGION, MotoServer, moto, moto_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def client(moto: MotoServer) -> AwsClient:
    return AwsClient(
        AwsConnection(region=REGION, endpoint=moto.url, access_key="testing", secret_key="testing"), workers=2
    )


async def test_sqs_receive_delete_and_visibility(moto: MotoServer) -> None:
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    aws = client(moto)
    try:
        assert await aws.queue_url("q") == url
        assert await aws.queue_url(url) == url  # a URL is used as is
        for i in range(3):
            sqs.send_message(
                QueueUrl=url,
                MessageBody=f"m{i}",
                MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}},
            )
        got = []
        while len(got) < 3:
            got += await aws.receive_messages(url, max_messages=10, wait_seconds=1, visibility_timeout=30)
        assert sorted(m.body for m in got) == ["m0", "m1", "m2"]
        assert got[0].message_attributes["n"]["DataType"] == "Number"
        assert "SentTimestamp" in got[0].attributes
        # one made visible again at once, two deleted
        await aws.change_visibility(url, [got[0].receipt_handle], 0)
        assert await aws.delete_messages(url, [m.receipt_handle for m in got[1:]]) == []
        again = await aws.receive_messages(url, wait_seconds=1)
        assert [m.body for m in again] == [got[0].body]
        with pytest.raises(AwsError) as info:
            await aws.queue_url("no-such-queue")
        assert info.value.retriable is False
        assert "GetQueueUrl 'no-such-queue'" in str(info.value)
    finally:
        await aws.close()


async def test_a_cancelled_poll_hands_its_messages_back(moto: MotoServer) -> None:
    sqs = moto.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    aws = client(moto)
    try:
        poll = asyncio.ensure_future(aws.receive_messages(url, wait_seconds=3, visibility_timeout=60))
        await asyncio.sleep(0.5)
        poll.cancel()  # the source stops; the long poll goes on on its thread ...
        sqs.send_message(QueueUrl=url, MessageBody="late")
        with pytest.raises(asyncio.CancelledError):
            await poll
        # ... receives the message, and hands it back instead of hiding it for 60 s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        bodies: list[str] = []
        while not bodies and loop.time() < deadline:
            bodies = [m.body for m in await aws.receive_messages(url, wait_seconds=1)]
        assert bodies == ["late"]
    finally:
        await aws.close()


async def test_s3_listing_pages_head_and_get(moto: MotoServer, tmp_path: Path) -> None:
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="landing")
    keys = [f"runs/{i:02d} a+b.fq" for i in range(7)]
    for key in keys:
        s3.put_object(Bucket="landing", Key=key, Body=key.encode())
    s3.put_object(Bucket="landing", Key="other/x", Body=b"kind: ConfigMap\napiVersion: v1\n")
    aws = client(moto)
    try:
        pages = [page async for page in aws.list_objects("landing", "runs/", page_size=3)]
        assert [len(p) for p in pages] == [3, 3, 1]
        listed = [o for page in pages for o in page]
        assert [o.key for o in listed] == keys
        assert listed[0].etag is not None and not listed[0].etag.startswith('"')
        assert listed[0].last_modified.tzinfo is not None
        head = await aws.head_object("landing", keys[0])
        assert head is not None and head.etag == listed[0].etag and head.size == len(keys[0])
        assert await aws.head_object("landing", "missing") is None
        assert await aws.get_object("landing", "other/x") == b"kind: ConfigMap\napiVersion: v1\n"
        with pytest.raises(AwsError) as info:
            _ = [page async for page in aws.list_objects("no-such-bucket")]
        assert info.value.code == "NoSuchBucket" and not info.value.retriable
    finally:
        await aws.close()

    # The k8s trigger's s3 source goes through the same facade.
    import httpx

    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "aws").mkdir(parents=True)
    (secrets_dir / "aws" / "a").write_text("testing")
    (secrets_dir / "aws" / "s").write_text("testing")
    async with httpx.AsyncClient() as http:
        context = TriggerContext(sensor="s", namespace="default", secrets=SecretStore(secrets_dir), http=http)
        location = ArtifactLocation.model_validate(
            {
                "s3": {
                    "bucket": {"name": "landing", "key": "other/x"},
                    "endpoint": moto.url,
                    "region": REGION,
                    "accessKey": {"name": "aws", "key": "a"},
                    "secretKey": {"name": "aws", "key": "s"},
                }
            }
        )
        fetcher = SourceFetcher(location, context, "trigger")
        assert await fetcher.fetch() == {"kind": "ConfigMap", "apiVersion": "v1"}
        missing = ArtifactLocation.model_validate(
            {
                "s3": {
                    "bucket": {"name": "landing", "key": "nope"},
                    "endpoint": moto.url,
                    "region": REGION,
                    "accessKey": {"name": "aws", "key": "a"},
                    "secretKey": {"name": "aws", "key": "s"},
                }
            }
        )
        with pytest.raises(TriggerError) as failure:
            await fetcher.fetch(missing)
        assert failure.value.retriable is False
        await fetcher.close()


async def test_unreachable_endpoint_is_retriable() -> None:
    aws = AwsClient(
        AwsConnection(region=REGION, endpoint="http://127.0.0.1:9", access_key="a", secret_key="b")
    )
    try:
        with pytest.raises(AwsError) as info:
            await aws.queue_url("q")
        assert info.value.retriable is True
    finally:
        await aws.close()
