"""The fake's pure parts (selectors, patches, paths), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_k8s.patches import (
    PatchApplyError,
    PatchDecodeError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from tests.fake_k8s.paths import Target, parse_path
from tests.fake_k8s.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)


def obj(labels: dict[str, str], name: str = "n", namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {}, True),  # != matches objects without the label
        ("a!=b", {"a": "b"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": "x"}, False),
        ("!a", {"b": "x"}, True),
        ("a in (x, y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a notin (x,y)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a=b,c in (d),!e", {"a": "b", "c": "d"}, True),
        ("a=b,c in (d),!e", {"a": "b", "c": "d", "e": "1"}, False),
        ("app.kubernetes.io/name=gw", {"app.kubernetes.io/name": "gw"}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("n>3", {}, False),
        ("a=", {"a": ""}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), obj(labels)) is expected


@pytest.mark.parametrize(
    "selector", ["a in (", "a in ()", "=b", "a b", "a=b c", "bad key!=x", "a=" + "x" * 64]
)
def test_bad_label_selectors(selector: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_label_selector(selector)


def test_field_selectors() -> None:
    reqs = parse_field_selector("metadata.name=a,metadata.namespace!=kube-system")
    assert fields_match(reqs, obj({}, name="a", namespace="argo"))
    assert not fields_match(reqs, obj({}, name="a", namespace="kube-system"))
    assert not fields_match(reqs, obj({}, name="b"))
    assert fields_match(parse_field_selector("metadata.name==a"), obj({}, name="a"))
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.x"):
        parse_field_selector("spec.x=1")


# RFC 7386, appendix A
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # inputs are never modified


def test_json_patch_operations() -> None:
    doc = {"foo": ["bar", "baz"], "a/b": 1, "m~n": 2}
    assert json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}])["foo"] == ["bar", "qux", "baz"]
    assert json_patch(doc, [{"op": "add", "path": "/foo/-", "value": "end"}])["foo"][-1] == "end"
    assert json_patch(doc, [{"op": "remove", "path": "/a~1b"}]) == {"foo": ["bar", "baz"], "m~n": 2}
    assert json_patch(doc, [{"op": "replace", "path": "/m~0n", "value": 3}])["m~n"] == 3
    moved = json_patch(doc, [{"op": "move", "from": "/foo/0", "path": "/first"}])
    assert moved["first"] == "bar" and moved["foo"] == ["baz"]
    copied = json_patch(doc, [{"op": "copy", "from": "/foo", "path": "/again"}])
    assert copied["again"] == ["bar", "baz"]
    assert json_patch(doc, [{"op": "test", "path": "/foo/1", "value": "baz"}]) == doc
    assert doc == {"foo": ["bar", "baz"], "a/b": 1, "m~n": 2}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/foo/0", "value": "nope"}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/missing/deeper", "value": 1}],
        [{"op": "add", "path": "/foo/9", "value": 1}],
        [{"op": "add", "path": "/x", "value": 1}, {"op": "test", "path": "/x", "value": 2}],
    ],
)
def test_json_patch_that_does_not_apply(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(PatchApplyError):
        json_patch({"foo": ["bar"]}, ops)


@pytest.mark.parametrize(
    "ops",
    [{"op": "add"}, [{"path": "/a"}], [{"op": "add", "path": "/a"}], [{"op": "frobnicate", "path": "/a"}]],
)
def test_malformed_json_patch(ops: Any) -> None:
    with pytest.raises(PatchDecodeError):
        json_patch({}, ops)


def test_strategic_merge_patch() -> None:
    pod = {
        "metadata": {"finalizers": ["a"], "labels": {"x": "1"}},
        "spec": {
            "containers": [
                {"name": "main", "image": "m:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "s:1"},
            ],
            "tolerations": [{"key": "t1"}],
        },
    }
    patched = strategic_merge_patch(
        pod,
        {
            "metadata": {"finalizers": ["b", "a"], "labels": {"x": None}},
            "spec": {
                "containers": [
                    {"name": "main", "env": [{"name": "B", "value": "2"}]},
                    {"name": "side", "$patch": "delete"},
                    {"name": "new", "image": "n:1"},
                ],
                "tolerations": [{"key": "t2"}],
                "$setElementOrder/containers": [{"name": "main"}, {"name": "new"}],
            },
        },
    )
    assert patched["metadata"] == {"finalizers": ["a", "b"], "labels": {}}
    assert patched["spec"]["containers"] == [
        {"name": "main", "image": "m:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "new", "image": "n:1"},
    ]
    assert patched["spec"]["tolerations"] == [{"key": "t2"}]  # lists without a merge key are replaced
    assert "$setElementOrder/containers" not in patched["spec"]

    replaced = strategic_merge_patch(pod, {"spec": {"$patch": "replace", "containers": []}})
    assert replaced["spec"] == {"containers": []}
    removed = strategic_merge_patch(pod, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert removed["metadata"]["finalizers"] == []
    retained = strategic_merge_patch(pod, {"spec": {"$retainKeys": ["tolerations"]}})
    assert retained["spec"] == {"tolerations": [{"key": "t1"}]}


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/", Target("root")),
        ("/version/", Target("version")),
        ("/api", Target("api")),
        ("/apis/argoproj.io", Target("group", group="argoproj.io")),
        ("/apis/argoproj.io/v1alpha1", Target("resources", group="argoproj.io", version="v1alpha1")),
        ("/api/v1/namespaces", Target("resource", version="v1", plural="namespaces")),
        ("/api/v1/namespaces/argo", Target("resource", version="v1", plural="namespaces", name="argo")),
        (
            "/api/v1/namespaces/argo/status",
            Target("resource", version="v1", plural="namespaces", name="argo", subresource="status"),
        ),
        (
            "/api/v1/namespaces/argo/configmaps",
            Target("resource", version="v1", plural="configmaps", namespace="argo"),
        ),
        (
            "/apis/argoproj.io/v1alpha1/namespaces/argo/workflows/wf-1/status",
            Target(
                "resource",
                group="argoproj.io",
                version="v1alpha1",
                plural="workflows",
                namespace="argo",
                name="wf-1",
                subresource="status",
            ),
        ),
        (
            "/apis/argoproj.io/v1alpha1/workflows",
            Target("resource", group="argoproj.io", version="v1alpha1", plural="workflows"),
        ),
        ("/metrics", Target("unknown")),
    ],
)
def test_paths(path: str, target: Target) -> None:
    assert parse_path(path) == target
