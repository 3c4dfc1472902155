"""The Kubernetes edge without a server: finding the cluster, translating errors, choosing the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from gateway.config import Manifests
from gateway.errors import ConfigError
from gateway.k8s import ClusterConfig, KubeClient, KubeError, find_cluster, translate
from gateway.outbox import Outbox
from gateway.runtime import Settings, needs_kube, open_kube
from gateway.triggers.artifacts import check_source
from sensors.spec import ArtifactLocation
from tests.unit.sensor_factory import dep, sensor

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts:
  - {name: one, context: {cluster: c, user: u}}
  - {name: two, context: {cluster: c, user: u, namespace: argo}}
current-context: one
"""


def write(path: Path, text: str = KUBECONFIG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_find_cluster_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sa = tmp_path / "sa"
    assert find_cluster(environ={"HOME": str(home)}, service_account_dir=sa) is None
    default = write(home / ".kube" / "config")
    assert find_cluster(environ={"HOME": str(home)}, service_account_dir=sa) == ClusterConfig(
        "kubeconfig", str(default)
    )
    a, b = write(tmp_path / "a"), write(tmp_path / "b")
    env = {"HOME": str(home), "KUBECONFIG": f"{a}:{tmp_path / 'missing'}:{b}"}
    assert find_cluster(environ=env, service_account_dir=sa) == ClusterConfig("kubeconfig", f"{a}:{b}")
    # KUBECONFIG set to files that do not exist: ~/.kube/config is not used instead (kubectl's rule)
    assert (
        find_cluster(environ={"HOME": str(home), "KUBECONFIG": str(tmp_path / "x")}, service_account_dir=sa)
        is None
    )
    write(sa / "token", "jwt")
    in_cluster = {"HOME": str(home), "KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    assert find_cluster(environ=in_cluster, service_account_dir=sa) == ClusterConfig("in-cluster")
    # an explicit kubeconfig or context wins over the service account
    assert find_cluster(a, environ=in_cluster, service_account_dir=sa) == ClusterConfig("kubeconfig", str(a))
    assert find_cluster(context="two", environ=in_cluster, service_account_dir=sa) == ClusterConfig(
        "kubeconfig", str(default), "two"
    )


def test_find_cluster_errors_name_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KubeError, match=r"--kubeconfig .*: no such file"):
        find_cluster(tmp_path / "nope", environ={})
    with pytest.raises(KubeError, match="--kube-context two was given but there is no kubeconfig"):
        find_cluster(context="two", environ={"HOME": str(tmp_path)})


async def test_kube_client_reads_the_context_and_rejects_a_bad_one(tmp_path: Path) -> None:
    path = write(tmp_path / "config")
    client = KubeClient(ClusterConfig("kubeconfig", str(path), "two"))
    assert client.description == f"Kubernetes API at http://127.0.0.1:1 (kubeconfig {path} (context two))"
    await client.close()
    with pytest.raises(KubeError, match=r"cannot use kubeconfig .*three"):
        KubeClient(ClusterConfig("kubeconfig", str(path), "three"))


async def test_an_unreachable_cluster_is_a_retriable_error(tmp_path: Path) -> None:
    client = KubeClient(ClusterConfig("kubeconfig", str(write(tmp_path / "config"))), request_timeout=2)
    try:
        with pytest.raises(KubeError) as info:
            await client.get("v1", "ConfigMap", "x", "default")
    finally:
        await client.close()
    assert info.value.retriable and info.value.reason == "ConnectionError"
    assert "cannot reach the API server" in str(info.value)
    with pytest.raises(KubeError, match="closed"):
        await client.get("v1", "ConfigMap", "x", "default")


class _Response:
    def __init__(self, status: int, body: str, headers: dict[str, str]) -> None:
        self.status, self.reason, self.data, self.headers = status, "Reason", body.encode(), headers


@pytest.mark.parametrize(
    ("status", "reason", "retriable"),
    [
        (500, "InternalError", True),
        (503, "ServiceUnavailable", True),
        (429, "TooManyRequests", True),
        (400, "BadRequest", False),
        (401, "Unauthorized", False),
        (403, "Forbidden", False),
        (404, "NotFound", False),
        (409, "AlreadyExists", False),
        (422, "Invalid", False),
    ],
)
def test_api_errors_keep_status_reason_and_message(status: int, reason: str, retriable: bool) -> None:
    body = f'{{"kind":"Status","code":{status},"reason":"{reason}","message":"the message"}}'
    exc = ApiException(http_resp=_Response(status, body, {"Retry-After": "7"}))
    error = translate(exc, "create Workflow argo/x")
    assert (error.status, error.reason, error.retriable) == (status, reason, retriable)
    assert str(error) == f"{status} {reason}: create Workflow argo/x: the message"
    assert error.retry_after == 7.0
    assert error.already_exists == (status == 409) and error.not_found == (status == 404)


def test_transport_errors_are_retriable() -> None:
    timeout = translate(urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"), "get")
    assert timeout.retriable and timeout.reason == "Timeout"
    refused = translate(urllib3.exceptions.NewConnectionError(None, "refused"), "get")  # type: ignore[arg-type]
    assert refused.retriable and refused.reason == "ConnectionError"
    conflict = translate(
        ApiException(http_resp=_Response(409, '{"reason":"Conflict","message":"modified"}', {})), "update"
    )
    assert conflict.conflict and not conflict.already_exists


def kube_sensor() -> Manifests:
    from gateway.config import Loaded, Origin

    model = sensor(
        [dep("run")],
        [{"template": {"name": "t", "k8s": {"source": {"inline": "{}"}}}}],
    )
    return Manifests(sensors=[Loaded(model, Origin(Path("s.yaml"), 1, 1))])


def test_open_kube_falls_back_to_the_outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert needs_kube(kube_sensor())
    settings = Settings(state_dir=tmp_path / "state")
    kube = open_kube(settings)
    assert isinstance(kube, Outbox) and kube.root == tmp_path / "state" / "outbox"
    monkeypatch.setenv("KUBECONFIG", str(write(tmp_path / "config")))
    assert isinstance(open_kube(Settings(state_dir=tmp_path, dry_run=True)), Outbox)
    assert isinstance(open_kube(Settings(state_dir=tmp_path)), KubeClient)


def test_an_s3_source_needs_boto3() -> None:
    location = ArtifactLocation.model_validate({"s3": {"bucket": {"name": "b", "key": "k"}}})
    try:
        import boto3  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="needs boto3, which is not installed"):
            check_source(location, "trigger 't' k8s")
    else:
        check_source(location, "trigger 't' k8s")
