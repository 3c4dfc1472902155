"""A faithful in-process fake of kube-apiserver for tests (real HTTP on 127.0.0.1).

    from tests.fake_k8s import FakeKubeAPI

    with FakeKubeAPI().start() as k8s:
        path = k8s.write_kubeconfig(tmp_path / "kubeconfig")
        ...

See README.md in this folder for what it reproduces faithfully and what it does not.
"""

from .resources import ResourceType
from .server import FakeKubeAPI, RecordedRequest
from .status import ApiError

__all__ = ["ApiError", "FakeKubeAPI", "RecordedRequest", "ResourceType"]
