"""The Lua sandbox (sensors/lua.py): Argo's script-filter vectors (filter_script_test.go), the
sandbox walls, the instruction and memory limits, and the JSON <-> Lua conversions."""

from __future__ import annotations

import json
import threading
import time
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.lua import (
    DEFAULT_LIMITS,
    LuaError,
    LuaLimits,
    LuaScript,
    LuaScriptFilter,
    compile_script_filter,
)

# --------------------------------------------------------------------------- Argo's vectors


@pytest.mark.parametrize(
    ("script", "data", "passed"),
    [
        ('if event.a == "hello" then return true else return false end', {"a": "hello"}, True),
        (
            'if event.a == "hello" and event.b == "world" then return false else return true end',
            {"a": "hello", "b": "world"},
            False,
        ),
    ],
)
def test_argo_script_filter_vectors(script: str, data: Any, passed: bool) -> None:
    assert compile_script_filter(script).evaluate(data) is passed


def test_argo_syntax_error_is_reported_when_the_filter_is_compiled() -> None:
    with pytest.raises(LuaError, match=r"filters\.script is not valid Lua 5\.4: script:1: 'then' expected"):
        compile_script_filter('if event.a == "hello" return false else return true end')


def test_argo_runtime_error_is_an_error_not_false() -> None:
    script = compile_script_filter('if a.a == "hello" then return true else return false end')
    with pytest.raises(
        LuaError, match=r"filters\.script failed: script:1: attempt to index a nil value \(global 'a'\)"
    ):
        script.evaluate({"a": "hello"})


# --------------------------------------------------------------------------- filter semantics


def test_nil_data_passes_without_running_the_script() -> None:
    assert compile_script_filter("error('must not run')").evaluate(None) is True


@pytest.mark.parametrize(
    "body",
    ["return 1", "return 'true'", "return {}", "return nil", "", "return false", "return true, false"],
)
def test_only_lua_true_passes(body: str) -> None:
    assert compile_script_filter(body).evaluate({"a": 1}) is False


def test_the_last_returned_value_decides_as_in_argo() -> None:
    assert compile_script_filter("return false, true").evaluate({}) is True


def test_filter_reads_nested_fields_and_numbers() -> None:
    script = compile_script_filter("return event.body.count > 3 and event.body.tags[2] == 'b'")
    assert script.evaluate({"body": {"count": 4, "tags": ["a", "b"]}}) is True
    assert script.evaluate({"body": {"count": 3, "tags": ["a", "b"]}}) is False


def test_filter_exposes_its_source() -> None:
    script = compile_script_filter("return true")
    assert isinstance(script, LuaScriptFilter)
    assert script.source == "return true"
    assert "return true" in repr(script.script)


def test_errors_with_non_string_objects_are_described() -> None:
    with pytest.raises(LuaError, match=r"failed: \(error object is a table value\)"):
        compile_script_filter("error({code = 1})").evaluate({})
    with pytest.raises(LuaError, match=r"failed: 42$"):
        compile_script_filter("error(42)").evaluate({})
    with pytest.raises(LuaError, match=r"failed: script:1: custom$"):
        compile_script_filter("error('custom')").evaluate({})


# --------------------------------------------------------------------------- sandbox


def run(source: str, data: Any = None, limits: LuaLimits = DEFAULT_LIMITS) -> Any:
    return LuaScript(source, limits=limits).run({} if data is None else data)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("os.execute('true')", "os"),
        ("return os.getenv('HOME')", "os"),
        ("io.open('/etc/passwd')", "io"),
        ("require('os')", "require"),
        ("load('return 1')()", "load"),
        ("loadstring('return 1')()", "loadstring"),
        ("dofile('/etc/passwd')", "dofile"),
        ("loadfile('/etc/passwd')", "loadfile"),
        ("return package.loaded.os", "package"),
        ("debug.sethook()", "debug"),
        ("collectgarbage('count')", "collectgarbage"),
        ("coroutine.wrap(function() end)()", "coroutine"),
        ("python.eval('1')", "python"),
        ("warn('x')", "warn"),
    ],
)
def test_dangerous_globals_fail_with_a_clear_error(source: str, name: str) -> None:
    with pytest.raises(
        LuaError, match=rf"script:1: '{name}' is not available in the Lua sandbox \(available: "
    ):
        run(source)


@pytest.mark.parametrize(
    "source", ["local f = string.dump(print) return f", "local s = ''; local f = s:dump() return f"]
)
def test_string_dump_is_refused(source: str) -> None:
    with pytest.raises(LuaError, match=r"script:1: 'string.dump' is not available in the Lua sandbox"):
        run(source)


def test_sandbox_escapes_have_no_effect_on_the_filesystem(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    for source in (
        f"os.execute('touch {target}')",
        f"io.open('{target}', 'w'):write('x')",
        f"pcall(os.execute, 'touch {target}')",
    ):
        with pytest.raises(LuaError):
            run(source)
    assert not target.exists()


def test_no_path_leads_back_to_the_real_globals() -> None:
    names = run(
        "local names = {} for k in pairs(_G) do names[#names + 1] = k end table.sort(names) return names"
    )
    assert set(names).isdisjoint({"os", "io", "require", "load", "debug", "package", "python", "coroutine"})
    assert "string" in names and "event" in names
    assert run("return rawget(_G, 'os') == nil and _G == _ENV") is True
    assert run("return getmetatable('')") is False  # the string metatable is hidden
    assert run("return getmetatable(_G)") is False
    with pytest.raises(LuaError, match="cannot change a protected metatable"):
        run("setmetatable(_G, {})")


def test_binary_chunks_are_refused() -> None:
    with pytest.raises(LuaError, match="attempt to load a binary chunk"):
        LuaScript("\x1bLua" + "\x00" * 20)


def test_each_call_starts_from_a_fresh_environment() -> None:
    counter = LuaScript("counter = (counter or 0) + 1 return counter")
    assert [counter.run({}), counter.run({})] == [1, 1]
    vandal = LuaScript("local before = string.upper('a') string.upper = nil math.floor = nil return before")
    assert vandal.run({}) == "A"
    assert vandal.run({}) == "A"  # the libraries came back
    event_keeper = LuaScript("if seen then return seen end seen = event.id return 'first'")
    assert event_keeper.run({"id": 1}) == "first"
    assert event_keeper.run({"id": 2}) == "first"


def test_gopher_lua_compatibility_helpers() -> None:
    assert run("return unpack({1, 2, 3})") == 3
    assert run("return math.pow(2, 10)") == 1024.0
    assert run("return table.getn({1, 2, 3})") == 3
    assert run("print('ignored') return _VERSION") == "Lua 5.4"
    assert run("return utf8.len('héllo')") == 5


# --------------------------------------------------------------------------- limits


def test_an_endless_loop_fails_instead_of_hanging() -> None:
    started = time.monotonic()
    with pytest.raises(LuaError, match=r"ran more than 10000000 Lua instructions \(the sandbox limit\)"):
        run("while true do end")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "source",
    [
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "xpcall(function() error('x') end, function() while true do end end)",
        "local function f() return f() end return f()",
    ],
)
def test_pcall_cannot_swallow_the_instruction_limit(source: str) -> None:
    with pytest.raises(LuaError, match="Lua instructions"):
        run(source, limits=LuaLimits(max_instructions=100_000))


def test_the_instruction_budget_is_per_call() -> None:
    limits = LuaLimits(max_instructions=50_000)
    loop = LuaScript("local n = 0 for i = 1, event.n do n = n + i end return n", limits=limits)
    assert loop.run({"n": 100}) == 5050
    with pytest.raises(LuaError, match="more than 50000 Lua instructions"):
        loop.run({"n": 1_000_000})
    assert loop.run({"n": 100}) == 5050  # usable again after the limit


def test_runaway_recursion_is_an_error() -> None:
    with pytest.raises(LuaError, match=r"stack overflow|Lua instructions|memory"):
        run("local function f() return 1 + f() end return f()")


@pytest.mark.parametrize(
    "source",
    [
        "local t = {} while true do t[#t + 1] = string.rep('x', 1e6) end",
        "local s = 'x' while true do s = s .. s end",
        "return string.rep('x', 1e9)",
        "local t = {} for i = 1, 1e9 do t[i] = i end",
    ],
)
def test_a_memory_bomb_fails_with_an_error(source: str) -> None:
    limits = LuaLimits(max_memory=8 * 1024 * 1024, max_instructions=100_000_000)
    script = LuaScript(source, limits=limits)
    with pytest.raises(LuaError, match=r"need more than 8 MiB of memory \(the sandbox limit\)"):
        script.run({})
    script_after = LuaScript("return #event.s", limits=limits)
    assert script_after.run({"s": "abc"}) == 3


def test_a_memory_error_caught_by_pcall_leaves_the_runtime_usable() -> None:
    limits = LuaLimits(max_memory=4 * 1024 * 1024)
    script = LuaScript("local ok, err = pcall(string.rep, 'x', 1e8) return {ok, err, event.n}", limits=limits)
    assert script.run({"n": 1}) == [False, "not enough memory", 1]
    assert script.run({"n": 2}) == [False, "not enough memory", 2]


def test_event_data_larger_than_the_memory_limit_is_an_error() -> None:
    script = LuaScript("return true", limits=LuaLimits(max_memory=1024 * 1024))
    with pytest.raises(LuaError, match="need more than 1 MiB of memory"):
        script.run({"big": ["x" * 1000 for _ in range(5000)]})


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_instructions must be at least 1000"):
        LuaLimits(max_instructions=10)
    with pytest.raises(ValueError, match="max_memory must be at least 1 MiB"):
        LuaLimits(max_memory=1000)
    assert LuaLimits(10_000_000, 64 * 1024 * 1024) == DEFAULT_LIMITS


# --------------------------------------------------------------------------- conversions


def test_json_values_arrive_as_lua_values() -> None:
    data = {"i": 3, "f": 1.5, "s": "héllo ✓", "t": True, "n": False, "arr": [10, 20, 30], "obj": {"k": "v"}}
    source = """
        return {
          math.type(event.i), math.type(event.f), event.s, event.t, event.n,
          #event.arr, event.arr[1], event.arr[3], event.obj.k, type(event.obj),
        }
    """
    assert run(source, data) == ["integer", "float", "héllo ✓", True, False, 3, 10, 30, "v", "table"]


def test_null_members_are_absent_and_null_elements_are_holes() -> None:
    data = {"gone": None, "arr": [1, None, 3]}
    assert run("return {event.gone == nil, event.arr[2] == nil, event.arr[3]}", data) == [True, True, 3]
    assert run("return event", data) == {"arr": [1, None, 3]}


def test_integers_beyond_64_bits_become_floats() -> None:
    assert run("return {math.type(event.n), event.n}", {"n": 2**70}) == ["float", float(2**70)]
    assert run("return event.n", {"n": 2**63 - 1}) == 2**63 - 1
    assert run("return event.n", {"n": -(2**63)}) == -(2**63)


def test_round_trip_keeps_nested_structure() -> None:
    data = {
        "header": {"Content-Type": ["application/json"]},
        "body": {
            "items": [{"a": 1, "b": [True, False]}, {"a": 2, "b": []}],
            "empty": {},
            "nested": [[1], [2, 3]],
        },
        "metadata": {},
    }
    assert run("return event", data) == data


def test_scalars_and_arrays_as_whole_event_data() -> None:
    assert run("return event", "text") == "text"
    assert run("return event + 1", 41) == 42
    assert run("return #event", [1, 2, 3]) == 3
    assert run("return event", [1, 2]) == [1, 2]
    assert run("return event", []) == []
    assert run("return event == nil", {}) is False


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("return {}", {}),
        ("return setmetatable({}, {__is_array = true})", []),
        ("return {1, 2, 3}", [1, 2, 3]),
        ("return {[1] = 'a', [2] = 'b'}", ["a", "b"]),
        ("return {[2] = 'b', [3] = 'c'}", {"2": "b", "3": "c"}),
        ("return {1, 2, x = 3}", {"1": 1, "2": 2, "x": 3}),
        ("return {[1.5] = 'a', [true] = 'b', [-1] = 'c'}", {"-1": "c", "1.5": "a", "true": "b"}),
        ("return setmetatable({1, nil, 3}, {__is_array = true})", [1, None, 3]),
        ("return {z = 1, a = 2, m = 3}", {"a": 2, "m": 3, "z": 1}),
        ("return 7 // 2", 3),
        ("return 7 / 2", 3.5),
        ("return 'x'", "x"),
        ("return true", True),
        ("return nil", None),
        ("return", None),
        ("return 1, 2, 3", 3),
    ],
)
def test_lua_values_come_back_with_argos_array_rule(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


def test_object_keys_come_back_sorted() -> None:
    assert list(run("return {c = 1, a = 2, b = 3}")) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("return 0/0", r"returned the number -?nan, which JSON cannot hold"),
        ("return {x = math.huge}", r"returned the number inf, which JSON cannot hold"),
        ("return print", r"returned a function, which JSON cannot hold"),
        ("return {f = function() end}", r"returned a function, which JSON cannot hold"),
        ("return {[{}] = 1}", r"returned a table with a table as a key; JSON object keys are strings"),
        (
            "local t = {} t.self = t return t",
            r"nested deeper than 256 levels \(a table that contains itself\?\)",
        ),
        ("return setmetatable({[1000000] = 1}, {__is_array = true})", r"more than 100000 holes"),
        ("return string.char(255)", r"returned a string that is not valid UTF-8"),
        ("return {[string.char(255)] = 1}", r"returned a string that is not valid UTF-8"),
    ],
)
def test_values_json_cannot_hold_are_errors(source: str, message: str) -> None:
    with pytest.raises(LuaError, match=message):
        run(source)


def test_conversion_of_a_shared_subtable_bomb_is_bounded() -> None:
    source = "local t = {} for i = 1, 60 do t = {t, t} end return t"
    with pytest.raises(LuaError, match="Lua instructions"):
        run(source, limits=LuaLimits(max_instructions=1_000_000))


def test_run_table_requires_a_table() -> None:
    script = LuaScript("return event.x", field="transform.script")
    assert script.run_table({"x": {"a": 1}}) == {"a": 1}
    assert script.run_table({"x": [1]}) == [1]
    with pytest.raises(LuaError, match=r"^transform\.script must return a Lua table, it returned a string$"):
        script.run_table({"x": "s"})
    with pytest.raises(LuaError, match=r"it returned nil$"):
        script.run_table({})


class Colour(IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"x": {1, 2}}, r"the event data holds a set, which is not a JSON value"),
        ({"x": b"raw"}, r"the event data holds a bytes, which is not a JSON value"),
        ({1: "x"}, r"the event data has a non-string object key 1"),
        ({"x": "\ud800"}, r"not valid Unicode"),
    ],
)
def test_event_data_that_is_not_json_is_an_error(data: Any, message: str) -> None:
    with pytest.raises(LuaError, match=message):
        run("return true", data)


def test_json_scalar_subclasses_are_accepted() -> None:
    assert run("return {math.type(event.c), event.c}", {"c": Colour.RED}) == ["integer", 1]


def test_deeply_nested_event_data_is_bounded() -> None:
    deep: Any = 1
    for _ in range(256):
        deep = [deep]
    assert run("return event", deep) == deep  # 256 levels of arrays: the limit
    with pytest.raises(LuaError, match="nested deeper than 256 levels"):
        run("return true", [deep])


def test_a_script_does_not_change_the_callers_data() -> None:
    data = {"a": [1, 2], "b": {"c": 1}}
    run("event.a[1] = 99 event.b.c = 2 event.new = true return event", data)
    assert data == {"a": [1, 2], "b": {"c": 1}}


# --------------------------------------------------------------------------- threads


def test_one_script_shared_by_threads_gives_each_caller_its_own_answer() -> None:
    script = compile_script_filter("local n = 0 for i = 1, 2000 do n = n + 1 end return event.n % 2 == 0")
    failures: list[str] = []

    def worker(offset: int) -> None:
        for n in range(offset, offset + 200):
            if script.evaluate({"n": n}) is not (n % 2 == 0):
                failures.append(f"n={n}")

    threads = [threading.Thread(target=worker, args=(i * 1000,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --------------------------------------------------------------------------- round trip (property)

_json_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
_ECHO = LuaScript("return event")


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_json_without_nulls_survives_the_trip_through_lua(value: Any) -> None:
    result = _ECHO.run(value)
    assert result == value
    assert json.dumps(result, sort_keys=True) == json.dumps(value, sort_keys=True)  # types too: 1 vs 1.0
