"""Fetch a Kubernetes trigger's object from its ``source`` (Argo's ``ArtifactLocation``).

``resource`` (an inline object), ``inline`` (a YAML or JSON string), ``file`` (a path on the
gateway's disk), ``url`` (HTTP GET; ``verifyCert: false``, Argo's default, skips TLS verification),
``configmap`` (one key of a ConfigMap, read through the Kubernetes API) and ``s3`` (one object,
through :mod:`gateway.aws`). Each returns a new dict; failures raise ``TriggerError`` whose
``retriable`` says whether fetching again can help (network and 5xx: yes; a missing file or key,
or a document that is not an object: no).
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from gateway.aws import AwsClient, AwsConnection, AwsError
from gateway.errors import ConfigError, TriggerError
from gateway.k8s import KubeError
from sensors.spec import ArtifactLocation, S3Artifact

if TYPE_CHECKING:
    from gateway.triggers.base import TriggerContext

__all__ = ["SourceFetcher", "check_source", "parse_object"]


def parse_object(text: str | bytes, where: str) -> dict[str, Any]:
    """The Kubernetes object in a YAML or JSON document."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TriggerError(f"{where} is not valid YAML or JSON: {exc}", retriable=False) from exc
    if not isinstance(loaded, dict):
        raise TriggerError(
            f"{where} must hold one Kubernetes object (a mapping with apiVersion, kind, metadata), "
            f"got {type(loaded).__name__}",
            retriable=False,
        )
    return loaded


def check_source(location: ArtifactLocation, where: str) -> None:
    """Problems that make a source unusable whatever the event (raises ``ConfigError``)."""
    if location.s3 is not None and importlib.util.find_spec("boto3") is None:
        raise ConfigError(
            [
                f"{where}.source.s3 needs boto3, which is not installed; install it (pip install boto3) "
                "or use another source: resource, inline, file, url or configmap"
            ]
        )


class SourceFetcher:
    """Fetches one trigger's source; holds the HTTP client for ``url`` sources without TLS checks."""

    def __init__(self, location: ArtifactLocation, context: TriggerContext, where: str) -> None:
        check_source(location, where)
        self.location = location
        self.context = context
        self.where = where
        self._insecure: httpx.AsyncClient | None = None

    async def fetch(self, location: ArtifactLocation | None = None) -> dict[str, Any]:
        """The object ``location`` (default: the trigger's own source) points at."""
        loc = location or self.location
        if loc.resource is not None:
            return copy.deepcopy(loc.resource)
        if loc.inline is not None:
            return parse_object(loc.inline, f"{self.where}.source.inline")
        if loc.file is not None:
            return await self._file(loc.file.path)
        if loc.url is not None:
            return await self._url(loc.url.path, loc.url.verify_cert)
        if loc.configmap is not None:
            return await self._configmap(loc.configmap.name, loc.configmap.key, loc.configmap.namespace)
        if loc.s3 is not None:
            return await self._s3(loc.s3)
        raise TriggerError(f"{self.where}.source names no location", retriable=False)

    async def _file(self, path: str) -> dict[str, Any]:
        try:
            text = await asyncio.to_thread(Path(path).read_bytes)
        except FileNotFoundError as exc:
            raise TriggerError(f"{self.where}.source.file: {path} does not exist", retriable=False) from exc
        except OSError as exc:
            raise TriggerError(
                f"{self.where}.source.file: cannot read {path}: {exc}", retriable=True
            ) from exc
        return parse_object(text, f"{self.where}.source.file {path}")

    async def _url(self, url: str, verify: bool) -> dict[str, Any]:
        client = self.context.http
        if not verify and url.lower().startswith("https:"):
            if self._insecure is None:
                self._insecure = httpx.AsyncClient(verify=False, follow_redirects=False)
            client = self._insecure
        try:
            response = await client.get(url, timeout=30.0)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise TriggerError(
                f"{self.where}.source.url {url!r} is not usable: {exc}", retriable=False
            ) from exc
        except httpx.HTTPError as exc:
            raise TriggerError(f"{self.where}.source.url: GET {url} failed: {exc!r}", retriable=True) from exc
        if response.status_code >= 400:
            raise TriggerError(
                f"{self.where}.source.url: GET {url} -> HTTP {response.status_code}",
                retriable=response.status_code >= 500 or response.status_code in (408, 429),
            )
        return parse_object(response.content, f"{self.where}.source.url {url}")

    async def _configmap(self, name: str, key: str, namespace: str | None) -> dict[str, Any]:
        kube = self.context.kube
        where = f"{self.where}.source.configmap {namespace or self.context.namespace}/{name}"
        if kube is None:
            raise TriggerError(f"{where}: no Kubernetes API is configured", retriable=False)
        try:
            configmap = await kube.get("v1", "ConfigMap", name, namespace or self.context.namespace)
        except KubeError as exc:
            raise TriggerError(
                f"{where}: {exc}", retriable=exc.retriable, retry_after=exc.retry_after
            ) from exc
        data = configmap.get("data") or {}
        if key not in data:
            raise TriggerError(
                f"{where} has no key {key!r}; keys: {', '.join(sorted(data)) or '(none)'}", retriable=False
            )
        return parse_object(data[key], f"{where} key {key}")

    async def _s3(self, spec: S3Artifact) -> dict[str, Any]:
        where = f"{self.where}.source.s3 {spec.bucket.name}/{spec.object_key}"
        secrets = self.context.secrets
        access = secrets.get(spec.access_key).reveal() if spec.access_key else None
        secret = secrets.get(spec.secret_key).reveal() if spec.secret_key else None

        endpoint = spec.endpoint
        if endpoint and "://" not in endpoint:
            endpoint = ("http://" if spec.insecure else "https://") + endpoint
        connection = AwsConnection(
            region=spec.region, endpoint=endpoint, access_key=access, secret_key=secret
        )
        client = AwsClient(connection, workers=1, name="s3-artifact")
        try:
            data = await client.get_object(spec.bucket.name, spec.object_key)
        except AwsError as exc:  # boto3 lives behind gateway.aws, which translates its errors
            raise TriggerError(f"{where}: {exc}", retriable=exc.retriable) from exc
        finally:
            await client.close()
        return parse_object(data, where)

    async def close(self) -> None:
        if self._insecure is not None:
            await self._insecure.aclose()
            self._insecure = None
