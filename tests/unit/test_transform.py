"""Event transforms (sensors/transform.py): Argo's vectors (transform_test.go), jq's and Lua's error
cases, and the choice between them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sensors.lua import LuaError, LuaLimits
from sensors.transform import (
    JqTransform,
    LuaTransform,
    TransformError,
    compile_jq,
    compile_lua_transform,
    compile_transform,
)

# --------------------------------------------------------------------------- Argo's vectors


def test_argo_jq_vector() -> None:
    assert compile_jq(".a += 1 | .b *= 2").apply({"a": 1, "b": "2"}) == {"a": 2, "b": "22"}


def test_argo_lua_vector() -> None:
    transform = compile_lua_transform("\nevent.c.d[1]=4\nreturn event\n")
    assert transform.apply({"a": 1, "b": "2", "c": {"d": [3]}}) == {"a": 1, "b": "2", "c": {"d": [4]}}


def test_argo_lua_script_returning_a_string_is_an_error() -> None:
    transform = compile_lua_transform('\nreturn "hello"\n')
    with pytest.raises(
        TransformError, match=r"transform\.script must return a Lua table, it returned a string"
    ):
        transform.apply({"a": 1, "b": "2", "c": {"d": [3]}})


def test_argo_lua_empty_array_through_the_is_array_metatable() -> None:
    transform = compile_lua_transform("\nevent.env = setmetatable({}, { __is_array = true })\nreturn event\n")
    assert transform.apply({"env": 123}) == {"env": []}
    assert compile_lua_transform("event.env = {} return event").apply({"env": 123}) == {"env": {}}


# --------------------------------------------------------------------------- jq


def test_jq_none_data_is_returned_unchanged() -> None:
    assert compile_jq('error("must not run")').apply(None) is None


@pytest.mark.parametrize("program", [".a", ".list", "[.]", '"text"', "null", "1"])
def test_jq_output_must_be_an_object(program: str) -> None:
    with pytest.raises(TransformError, match=r"^jq transformation output must be a JSON object$"):
        compile_jq(program).apply({"a": 1, "list": [1]})


def test_jq_without_output_is_an_error() -> None:
    with pytest.raises(
        TransformError, match=r"transform\.jq 'empty': no output available from the jq command"
    ):
        compile_jq("empty").apply({"a": 1})


def test_jq_only_the_first_output_counts() -> None:
    assert compile_jq('{x: 1}, error("later")').apply({}) == {"x": 1}
    assert compile_jq(".items[]").apply({"items": [{"n": 1}, {"n": 2}]}) == {"n": 1}
    with pytest.raises(TransformError, match="must be a JSON object"):
        compile_jq("1, {x: 1}").apply({})


def test_jq_compile_error_names_the_program_and_the_jq_message() -> None:
    with pytest.raises(TransformError) as caught:
        compile_jq(".a +")
    message = str(caught.value)
    assert message.startswith("transform.jq '.a +' does not compile: syntax error, unexpected end of file")
    assert "line 1, column 4" in message
    assert "def env" not in message  # the prelude stays out of the user's error


def test_jq_runtime_error_names_the_program() -> None:
    transform = compile_jq('{a: (.a + "x")}')
    with pytest.raises(
        TransformError, match=r"transform\.jq '\{a: \(\.a \+ \"x\"\)\}' failed: number \(1\) and string"
    ):
        transform.apply({"a": 1})
    with pytest.raises(TransformError, match=r"failed: boom"):
        compile_jq('error("boom")').apply({})


def test_jq_sees_no_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERGATE_SECRET", "s3cr3t")
    assert compile_jq("{a: env.TRIGGERGATE_SECRET, b: $ENV.TRIGGERGATE_SECRET, c: env}").apply({}) == {
        "a": None,
        "b": None,
        "c": {},
    }


def test_jq_debug_and_stderr_do_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    assert compile_jq('.a | debug | debug("msg") | stderr | {a: .}').apply({"a": 1}) == {"a": 1}
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("program", ['import "lib" as lib; .', '# comment\ninclude "lib"; .', "module {}; ."])
def test_jq_modules_are_refused(program: str) -> None:
    with pytest.raises(TransformError, match=r"jq modules \(import, include, module\) are not supported"):
        compile_jq(program)


def test_jq_programs_with_definitions_and_bindings_work() -> None:
    program = "def double: . * 2; .n as $n | {n: ($n | double), keys: (keys | length)}"
    assert compile_jq(program).apply({"n": 21, "x": 0}) == {"n": 42, "keys": 2}


def test_jq_accepts_data_that_is_not_an_object() -> None:
    assert compile_jq("{first: .[0]}").apply([1, 2]) == {"first": 1}


def test_jq_does_not_change_the_callers_data() -> None:
    data = {"a": {"b": 1}}
    snapshot = copy.deepcopy(data)
    compile_jq(".a.b = 2").apply(data)
    assert data == snapshot


def test_jq_data_that_is_not_json_is_a_transform_error() -> None:
    with pytest.raises(TransformError, match="failed"):
        compile_jq(".").apply({"x": {1, 2}})


def test_jq_transform_repr_shows_the_program() -> None:
    assert repr(compile_jq(".")) == "JqTransform(program='.')"


# --------------------------------------------------------------------------- Lua


def test_lua_none_data_is_returned_unchanged() -> None:
    assert compile_lua_transform("error('must not run')").apply(None) is None


def test_lua_may_return_an_array_table() -> None:
    assert compile_lua_transform("return event.items").apply({"items": [1, 2]}) == [1, 2]


def test_lua_builds_new_structures() -> None:
    script = """
        local out = {name = string.upper(event.name), tags = {}}
        for i, tag in ipairs(event.tags) do out.tags[i] = tag .. "!" end
        out.count = #event.tags
        return out
    """
    result = compile_lua_transform(script).apply({"name": "x", "tags": ["a", "b"]})
    assert result == {"count": 2, "name": "X", "tags": ["a!", "b!"]}


def test_lua_syntax_error_is_a_transform_error_at_compile_time() -> None:
    with pytest.raises(TransformError, match=r"transform\.script is not valid Lua 5\.4: script:1:") as caught:
        compile_lua_transform("return {")
    assert isinstance(caught.value.__cause__, LuaError)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("return nil", r"must return a Lua table, it returned nil"),
        ("return os.time()", r"'os' is not available in the Lua sandbox"),
        ("while true do end", r"Lua instructions \(the sandbox limit\)"),
        ("return {f = print}", r"returned a function, which JSON cannot hold"),
    ],
)
def test_lua_failures_are_transform_errors(script: str, message: str) -> None:
    transform = compile_lua_transform(script, limits=LuaLimits(max_instructions=100_000))
    with pytest.raises(TransformError, match=message) as caught:
        transform.apply({"a": 1})
    assert isinstance(caught.value.__cause__, LuaError)


def test_lua_transform_exposes_its_source() -> None:
    assert compile_lua_transform("return event").source == "return event"


# --------------------------------------------------------------------------- choosing


@pytest.mark.parametrize(
    ("jq", "script", "kind"),
    [
        (".", "return {}", JqTransform),  # Argo: jq wins
        (".", None, JqTransform),
        (None, "return event", LuaTransform),
        ("", "return event", LuaTransform),
    ],
)
def test_compile_transform_picks_one(jq: str | None, script: str | None, kind: type[Any]) -> None:
    assert isinstance(compile_transform(jq, script), kind)


@pytest.mark.parametrize(("jq", "script"), [(None, None), ("", ""), ("", None)])
def test_compile_transform_without_a_program_is_none(jq: str | None, script: str | None) -> None:
    assert compile_transform(jq, script) is None


def test_compile_transform_passes_lua_limits() -> None:
    transform = compile_transform(
        None, "for i = 1, 1e6 do end return {}", limits=LuaLimits(max_instructions=10_000)
    )
    assert transform is not None
    with pytest.raises(TransformError, match="more than 10000 Lua instructions"):
        transform.apply({})


def test_both_transforms_give_the_same_result_on_the_same_job() -> None:
    data = {"body": {"bucket": "raw", "key": "a/b.fastq"}}
    by_jq = compile_jq('{bucket: .body.bucket, sample: (.body.key | split("/") | .[0])}')
    by_lua = compile_lua_transform(
        'return {bucket = event.body.bucket, sample = string.match(event.body.key, "^([^/]+)/")}'
    )
    assert by_jq.apply(data) == by_lua.apply(data) == {"bucket": "raw", "sample": "a"}
