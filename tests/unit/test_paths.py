"""gjson lookups and sjson writes on parsed JSON: the cases of gjson's and sjson's documentation,
Argo's own test vectors, and the corners of each rule."""

from __future__ import annotations

import copy
import math
from typing import Any

import orjson
import pytest

from sensors.paths import (
    PathError,
    PathResult,
    compact_json,
    go_format_float,
    go_parse_bool,
    go_parse_float,
    lookup,
    set_path,
)

# The document of gjson's SYNTAX.md.
DOC: Any = orjson.loads(
    b"""{
  "name": {"first": "Tom", "last": "Anderson"},
  "age": 37,
  "children": ["Sara", "Alex", "Jack"],
  "fav.movie": "Deer Hunter",
  "friends": [
    {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
    {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
    {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
  ]
}"""
)
DALE, ROGER, JANE = DOC["friends"]


def found(path: str, data: Any = DOC) -> Any:
    result = lookup(data, path)
    assert result is not None, f"{path!r} should exist"
    return result.value


# --------------------------------------------------------------------------- gjson documentation


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # Basic
        ("name.last", "Anderson"),
        ("name.first", "Tom"),
        ("age", 37),
        ("children", ["Sara", "Alex", "Jack"]),
        ("children.0", "Sara"),
        ("children.1", "Alex"),
        ("friends.1", ROGER),
        ("friends.1.first", "Roger"),
        # Wildcards
        ("child*.2", "Jack"),
        ("c?ildren.0", "Sara"),
        # Escape character
        ("fav\\.movie", "Deer Hunter"),
        # Arrays
        ("friends.#", 3),
        ("friends.#.age", [44, 68, 47]),
        # Queries
        ('friends.#(last=="Murphy").first', "Dale"),
        ('friends.#(last=="Murphy")#.first', ["Dale", "Jane"]),
        ("friends.#(age>45)#.last", ["Craig", "Murphy"]),
        ('friends.#(first%"D*").last', "Murphy"),
        ('friends.#(first!%"D*").last', "Craig"),
        ('children.#(!%"*a*")', "Alex"),
        ('children.#(%"*a*")#', ["Sara", "Jack"]),
        ('friends.#(nets.#(=="fb"))#.first', ["Dale", "Roger"]),
        # Dot vs pipe
        ("friends.0.first", "Dale"),
        ("friends|0.first", "Dale"),
        ("friends.0|first", "Dale"),
        ("friends|0|first", "Dale"),
        ("friends|#", 3),
        ('friends.#(last="Murphy")#', [DALE, JANE]),
        ('friends.#(last="Murphy")#.first', ["Dale", "Jane"]),
        ('friends.#(last="Murphy")#.0', []),
        ('friends.#(last="Murphy")#|0', DALE),
        ('friends.#(last="Murphy")#.#', []),
        ('friends.#(last="Murphy")#|#', 2),
        # Modifiers
        ("children.@reverse", ["Jack", "Alex", "Sara"]),
        ("children.@reverse.0", "Jack"),
        ("children|@reverse", ["Jack", "Alex", "Sara"]),
        ("children|@reverse|0", "Jack"),
        # Multipaths
        (
            '{name.first,age,"the_murphys":friends.#(last="Murphy")#.first}',
            {"first": "Tom", "age": 37, "the_murphys": ["Dale", "Jane"]},
        ),
        # README: nested array values and object query
        ("friends.#.first", ["Dale", "Roger", "Jane"]),
        ('friends.#(last="Craig").first', "Roger"),
    ],
)
def test_gjson_documented_paths(path: str, expected: Any) -> None:
    assert found(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "name.middle",
        "nope",
        "children.3",
        "children.-1",
        "children.x",
        "age.x",  # a key on a number
        "name.0",  # an index on an object without that key
        'friends.#(last="Murphy")#|first',  # documented <non-existent>
        'friends.#(last=="Nobody").first',
        "friends.#x",  # '#' followed by something else
        "friends.#(last==",  # unterminated query
        "#",  # '#' on an object is the key "#"
        "friends.0.first.x",
        "",
    ],
)
def test_missing_paths(path: str) -> None:
    assert lookup(DOC, path) is None


def test_scalars_and_empty_documents_have_no_children() -> None:
    assert lookup("text", "a") is None
    assert lookup(5, "0") is None
    assert lookup(None, "a") is None
    assert lookup({}, "a") is None
    assert lookup([], "0") is None
    assert lookup([], "#") == PathResult(0)


# --------------------------------------------------------------------------- keys and indexes


def test_digit_keys_on_objects_are_keys_and_indexes_on_arrays() -> None:
    data = {"0": "zero", "items": [{"name": "a"}, {"name": "b"}], "10": {"1": "x"}}
    assert found("0", data) == "zero"
    assert found("items.1.name", data) == "b"
    assert found("10.1", data) == "x"
    assert found("items.01.name", data) == "b"  # gjson parses the index as a number
    assert lookup(data, "items.2") is None


def test_json_null_exists_and_a_missing_key_does_not() -> None:
    data = {"a": None}
    assert lookup(data, "a") == PathResult(None, ("a",))
    assert lookup(data, "b") is None


def test_empty_key() -> None:
    assert found("", {"": 1}) == 1
    assert found("a.", {"a": {"": 2}}) == 2


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a\\.b", 1),
        ("a\\.b\\.c", 2),
        ("x\\*y", 3),  # an escaped wildcard is literal
        ("q\\?", 4),
        ("p\\|q", 5),
        ("back\\\\slash", 6),
        ("nest.in\\.ner", 7),
    ],
)
def test_escapes(path: str, expected: int) -> None:
    data = {
        "a.b": 1,
        "a.b.c": 2,
        "x*y": 3,
        "xzzy": 30,
        "q?": 4,
        "p|q": 5,
        "back\\slash": 6,
        "nest": {"in.ner": 7},
    }
    assert found(path, data) == expected


def test_escaped_wildcard_does_not_match_other_keys() -> None:
    assert lookup({"xzzy": 1}, "x\\*y") is None
    assert found("x\\**", {"xzzy": 1, "x*tail": 2}) == 2


def test_trailing_backslash_is_dropped() -> None:
    assert found("ab\\", {"ab": 1}) == 1


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("*", 1),  # the first key in document order
        ("b*", 2),
        ("?b", 4),
        ("*.deep", "yes"),  # backtracks to the first key where the rest exists
        ("*.deep|@this", "yes"),
        ("b?.x", "bx"),
        ("*|deep", None),  # after a pipe there is no backtracking: the first key is a number
        ("bb*", None),
    ],
)
def test_wildcards(path: str, expected: Any) -> None:
    data = {"a": 1, "ba": 2, "bc": {"x": "bx"}, "ab": 4, "obj": {"deep": "yes"}}
    result = lookup(data, path)
    assert (None if result is None else result.value) == expected


def test_wildcard_on_array_is_no_index() -> None:
    assert lookup({"a": [1, 2]}, "a.*") is None


def test_wildcard_matches_keys_with_any_characters() -> None:
    assert found("a*", {"a\nb": 1}) == 1
    assert found("a?c", {"a.c": 2}) == 2


# --------------------------------------------------------------------------- '#' and queries


LISTS: Any = {
    "files": [
        {"key": "s1_R1.fastq.gz", "size": 10, "kind": "fastq", "ok": True, "meta": {"lane": 1}},
        {"key": "s1_R2.fastq.gz", "size": 12, "kind": "fastq", "ok": False},
        {"key": "readme.txt", "size": 3, "kind": "text", "ok": True, "note": None},
        {"key": "s2_R1.fastq.gz", "size": "20", "kind": "fastq", "ok": "true"},
    ],
    "words": ["alpha", "beta", "gamma"],
    "numbers": [1, 5, 10],
    "flags": [True, False, True],
    "mixed": [1, "1", True, None, {"a": 1}, [1]],
    "matrix": [[1, 2], [3], []],
    "nested": [{"tags": [{"n": "x"}, {"n": "y"}]}, {"tags": [{"n": "z"}]}, {"other": 1}],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("files.#", 4),
        ("files.#.key", ["s1_R1.fastq.gz", "s1_R2.fastq.gz", "readme.txt", "s2_R1.fastq.gz"]),
        ("files.#.meta.lane", [1]),  # elements without the key are left out
        ("files.#.note", [None]),
        ("files.#.nothing", []),
        ("matrix.#.#", [2, 1, 0]),
        ("matrix.#.0", [1, 3]),
        ("nested.#.tags.#.n", [["x", "y"], ["z"]]),
        ("nested.#.tags|@flatten", [{"n": "x"}, {"n": "y"}, {"n": "z"}]),
        ("nested.#.tags.#.n|@flatten", ["x", "y", "z"]),
        ("nested.#.tags.#.n|0", ["x", "y"]),
        ("files.#|@this", 4),
        ("words.#.@this", ["alpha", "beta", "gamma"]),
        ('files.#(kind=="fastq").key', "s1_R1.fastq.gz"),
        ('files.#(kind=="fastq")#.key', ["s1_R1.fastq.gz", "s1_R2.fastq.gz", "s2_R1.fastq.gz"]),
        ('files.#(kind="text").size', 3),
        ('files.#(kind!="fastq")#.key', ["readme.txt"]),
        ("files.#(size>10)#.key", ["s1_R2.fastq.gz", "s2_R1.fastq.gz"]),  # "20" > "10" as text
        ("files.#(size>=10)#.size", [10, 12, "20"]),
        ("files.#(size<10).key", "readme.txt"),
        ("files.#(size<=10)#.size", [10, 3]),
        ('files.#(size=="20").key', "s2_R1.fastq.gz"),
        ('files.#(size>"15")#.size', ["20"]),
        ('files.#(size<"3")#.size', ["20"]),
        ('files.#(size<="20")#.size', [10, 12, 3, "20"]),
        ('files.#(size>="3")#.size', [10, 12, 3]),  # "20" < "3" as text
        ('files.#(key%"*_R?.fastq.gz")#.key', ["s1_R1.fastq.gz", "s1_R2.fastq.gz", "s2_R1.fastq.gz"]),
        ('files.#(key!%"s1*")#.key', ["readme.txt", "s2_R1.fastq.gz"]),
        ("files.#(meta)#.key", ["s1_R1.fastq.gz"]),  # existence
        ("files.#(meta.lane==1).key", "s1_R1.fastq.gz"),
        ("files.#(note)#.key", ["readme.txt"]),  # null exists
        ("files.#(ok==true)#.key", ["s1_R1.fastq.gz", "readme.txt", "s2_R1.fastq.gz"]),  # "true" too
        ("files.#(ok!=true)#.key", ["s1_R2.fastq.gz"]),
        ("files.#(ok==false)#.key", ["s1_R2.fastq.gz"]),
        ("files.#(ok!=false)#.key", ["s1_R1.fastq.gz", "readme.txt", "s2_R1.fastq.gz"]),
        ("files.#(ok==~true)#.key", ["s1_R1.fastq.gz", "readme.txt", "s2_R1.fastq.gz"]),
        ("files.#(ok==~false)#.key", ["s1_R2.fastq.gz"]),
        ("files.#(note==~null)#.key", ["s1_R1.fastq.gz", "s1_R2.fastq.gz", "readme.txt", "s2_R1.fastq.gz"]),
        ("files.#(meta==~*)#.key", ["s1_R1.fastq.gz"]),
        ("files.#(meta!=~*)#.key", ["s1_R2.fastq.gz", "readme.txt", "s2_R1.fastq.gz"]),
        ("files.#(ok==~maybe)#.key", []),
        ('words.#(=="beta")', "beta"),
        ('words.#(!="beta")#', ["alpha", "gamma"]),
        ('words.#(>"b")#', ["beta", "gamma"]),
        ('words.#(%"g*")', "gamma"),
        ("numbers.#(>4)#", [5, 10]),
        ("numbers.#(==5)", 5),
        ("numbers.#(!=5)#", [1, 10]),
        ("numbers.#(<5)#", [1]),
        ("numbers.#(<=5)#", [1, 5]),
        ("numbers.#(>=10)#", [10]),
        ("numbers.#(>abc)#", [1, 5, 10]),  # a value that is no number compares as 0
        ("flags.#(==true)#", [True, True]),
        ("flags.#(==false)#", [False]),
        ("flags.#(>false)#", [True, True]),  # true > false
        ("flags.#(>=true)#", [True, True]),
        ("flags.#(<true)#", [False]),
        ("flags.#(<=false)#", [False]),
        ("flags.#(<false)#", []),
        ("flags.#(>true)#", []),
        ("mixed.#(==1)#", [1, "1"]),
        ("mixed.#(a==1)", {"a": 1}),
        ("mixed.#(0==1)", [1]),  # a query path on an array element
        ("mixed.#(x==~null)#", [{"a": 1}, [1]]),  # a missing path is null-ish
        ("files.#[kind==\"text\"].key", "readme.txt"),  # the pre-1.3 bracket form
        ("files.#(kind==\"fastq\")#|#", 3),
        ("files.#(kind==\"fastq\")#|1.key", "s1_R2.fastq.gz"),
        ("files.#(kind==\"fastq\")#.key|1", "s1_R2.fastq.gz"),
        ('files.#(kind=="fastq").meta|lane', 1),
        ("files.#( kind == \"text\" ).key", "readme.txt"),  # spaces around
        ('nested.#(tags.#(n=="z")).tags.0.n', "z"),
        ('nested.#(tags.#(n=="q"))#', []),
    ],
)
def test_arrays_and_queries(path: str, expected: Any) -> None:
    assert found(path, LISTS) == expected


@pytest.mark.parametrize(
    "path",
    [
        'files.#(kind=="image").key',
        'files.#(kind=="fastq").missing',  # the first match decides; later matches are not tried
        "files.#(nothing)",
        "words.#(a==1)",  # a query path on a string element never matches
        "flags.#(%\"t*\")",  # like only applies to strings
        "mixed.#(~bogus==1)",
        "files.#(kind==\"fastq\")|missing",
        "files.#(kind=\"fastq\"",
    ],
)
def test_queries_without_match(path: str) -> None:
    assert lookup(LISTS, path) is None


def test_query_value_escapes_are_decoded() -> None:
    data = {"a": [{"k": 'say "hi"'}, {"k": "tab\there"}]}
    assert found('a.#(k=="say \\"hi\\"").k', data) == 'say "hi"'
    assert found('a.#(k=="tab\\there").k', data) == "tab\there"


def test_query_with_dot_and_pipe_in_value() -> None:
    data = {"a": [{"k": "x.y|z"}, {"k": "other"}]}
    assert found('a.#(k=="x.y|z")|k', data) == "x.y|z"
    assert found('a.#(k=="x.y|z")#.k', data) == ["x.y|z"]


def test_query_all_with_a_nested_query_in_the_rest() -> None:
    data = {"a": [{"t": [{"n": 1}, {"n": 2}]}, {"t": [{"n": 3}]}]}
    assert found("a.#(t)#.t.#(n>1)#.n", data) == [[2], [3]]
    assert found("a.#(t)#.t.#(n>1)#.n|@flatten", data) == [2, 3]


def test_each_with_pipe_after_nested_query() -> None:
    data = {"a": [{"t": [{"n": 1}]}, {"t": [{"n": 2}]}]}
    # the pipe applies to the array of per-element results
    assert found("a.#.t.#(n>0)", data) == [{"n": 1}, {"n": 2}]
    assert found("a.#.t.#(n>0)|0", data) == {"n": 1}
    assert lookup(data, "a.#.t.#(n>0)|n") is None
    assert found("a.#.t.#(n>0)#|0", data) == [{"n": 1}]


def test_like_patterns_match_the_whole_string() -> None:
    data = ["abc", "xabc", "ab"]
    assert found('#(%"ab*")#', data) == ["abc", "ab"]
    assert found('#(%"a?c")#', data) == ["abc"]
    assert found('#(%"*")#', data) == data


def test_like_pattern_escapes() -> None:
    data = ["a*b", "axb"]
    assert found('#(%a\\*b)#', data) == ["a*b"]  # unquoted: '\' escapes the '*'
    assert found('#(%"a\\\\*b")#', data) == ["a*b"]  # quoted: JSON-unescaped first
    # gjson's unescape stops at an escape JSON does not know: the pattern becomes "a"
    assert found('#(%"a\\*b")#', data) == []


@pytest.mark.parametrize(
    ("escaped", "text"),
    [
        ("\\u00e9", "é"),
        ("\\ud83d\\ude00", "\U0001F600"),
        ("\\ud83dx", "\ufffdx"),
        ("\\ud83d\\u0041", "\ufffd"),
        ("\\uzzzz", "\x00"),
        ("a\\u00", "a"),
        ("\\/\\b\\f\\n\\r\\t\\\\", "/\b\f\n\r\t\\"),
    ],
)
def test_query_value_unescape(escaped: str, text: str) -> None:
    assert found(f'#(=="{escaped}")', [text, "other"]) == text


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        ("#(k=)", [{"k": "x"}, {"k": ""}], {"k": ""}),  # '=' with an empty value
        ("#(k!x)", [{"j": 1}, {"k": 1}], {"k": 1}),  # no operator recognised: existence of k
        ("#(%1)", [1, 10], None),  # like on numbers never matches
        ("#(!=1)#", [1, 2], [2]),
    ],
)
def test_query_operator_parsing(path: str, data: Any, expected: Any) -> None:
    result = lookup(data, path)
    assert (None if result is None else result.value) == expected


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        # a '{...}' multipath at the start of the per-element path, then a pipe
        ("#.{a,b}|0", [{"a": 1, "b": 2}, {"a": 3}], {"a": 1, "b": 2}),
        ('#.{a,"p|q":a}', [{"a": 1}], [{"a": 1, "p|q": 1}]),  # the '|' is inside the braces
        ("#.a\\|b", [{"a|b": 1}], [1]),  # an escaped '|' does not split
        ('a.#.t.#(n=="x|y").n', {"a": [{"t": [{"n": "x|y"}, {"n": "z"}]}]}, ["x|y"]),
        ('a.#.t.#[n=="x|y"].n', {"a": [{"t": [{"n": "x|y"}]}]}, ["x|y"]),
        ("a.#.t.#(n==x\\|y).n", {"a": [{"t": [{"n": "x\\|y"}]}]}, ["x\\|y"]),
        ('a.#.t.#(n.#(=="q|r")).n|0', {"a": [{"t": [{"n": ["q|r"]}]}]}, ["q|r"]),
        ("a.#.t.|0", {"a": [{"t": 1}]}, None),  # '.' then '|': the empty key, then index 0
        ("#.t.#(a|b", [{"t": [{"a": 1}]}], []),  # an unterminated query is no split and no match
    ],
)
def test_pipes_inside_each_paths(path: str, data: Any, expected: Any) -> None:
    result = lookup(data, path)
    assert (None if result is None else result.value) == expected


def test_unescape_stops_at_a_control_character() -> None:
    assert found('#(=="\\n\tb")', ["\n", "x"]) == "\n"


# --------------------------------------------------------------------------- multipaths, statics


def test_multipath_array_and_object_names() -> None:
    assert found("[name.first,age,nothing]") == ["Tom", 37]
    assert found("{name.first,age,nothing}") == {"first": "Tom", "age": 37}
    assert found('{"full name":name.first}') == {"full name": "Tom"}
    assert found("{nick:name.first}") == {"nick": "Tom"}
    assert found('{"a\\q":name.first}') == {'"a\\q"': "Tom"}  # not a JSON string: kept as written
    assert found("{friends.#(age>45)#.last}") == {"last": ["Craig", "Murphy"]}
    assert found("{friends.#(age>45)#}") == {"_": [ROGER, JANE]}  # no simple name
    assert lookup(DOC, '{"open:name.first}') is None  # unterminated quote: no multipath, no key
    assert found("{fav\\.movie}") == {"fav\\.movie": "Deer Hunter"}  # gjson keeps the escape
    assert found("{name.first,name.first}") == {"first": "Tom"}


def test_multipath_then_rest() -> None:
    assert found("[name.first,age].1") == 37
    assert found("[name.first,age]|#") == 2
    assert found("{name.first,age}.age") == 37
    assert found("name.[first,last]") == ["Tom", "Anderson"]
    assert found("friends.0.{first,age}") == {"first": "Dale", "age": 44}
    assert lookup(DOC, "[name.first,age]x") is None  # neither '.' nor '|': not a multipath, no such key


def test_argo_regex_filter_path_vectors() -> None:
    # Argo filter_data_test.go "string filter Regex" and "Regex2".
    one = {"k": "v", "k1": {"a": [{"k2": "v2"}]}}
    two = {"k": "v", "k1": {"a": [{"k2": "v2"}, {"k2": "v3"}]}}
    assert lookup(one, '[k,k1.a.#(k2=="v2").k2]') == PathResult(["v", "v2"])
    result = lookup(two, '[k,k1.a.#(k2=="v2").k2,,k1.a.#(k2=="v3").k2]')
    assert result is not None and result.string() == '["v","v2","v3"]'


def test_unterminated_multipath_is_a_key() -> None:
    assert found("[a", {"[a": 1}) == 1
    assert found("{a", {"{a": 2}) == 2


def test_multipath_selectors_skip_quotes_escapes_and_nesting() -> None:
    data = {"a,b": 1, "c": [{"d": 2}], "e]": 3}
    assert found('[a\\,b,c.#(d==2).d,"x":c]', data) == [1, 2, [{"d": 2}]]
    assert found('{"k,]":c.0.d}', data) == {"k,]": 2}
    assert found("[e\\]]", data) == [3]
    assert found("[c.0.@this]", data) == [{"d": 2}]
    assert found("[@this,e\\]]", data) == [data, 3]  # '@' not after '.' or '|'
    assert found('{n:c.0.@pretty:{"x":1}}', data) == {"n": {"d": 2}}  # ':' of a modifier argument
    assert found("{a:c.#(d:1)}", {"c": [{"d:1": 0}]}) == {"a": {"d:1": 0}}  # ':' inside a query


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("!true", True),
        ("!false", False),
        ("!null", None),
        ("!NULL", None),
        ('!"text"', "text"),
        ("!12", 12),
        ("!-3", -3),
        ("!2.5", 2.5),
        ("!1e2", 100.0),
        ('!{"a":{"b":1}}.a.b', 1),
        ("![1,2]|#", 2),
        ('{"on":!true,"age":age}', {"on": True, "age": 37}),
        ('[!"x",!1]', ["x", 1]),
    ],
)
def test_static_values(path: str, expected: Any) -> None:
    assert found(path) == expected


def test_static_special_numbers() -> None:
    assert math.isnan(found("!nan"))
    assert found("!inf") == math.inf


@pytest.mark.parametrize("path", ["!maybe", "!+", "!{bad", "!"])
def test_not_static_values_are_keys(path: str) -> None:
    assert lookup(DOC, path) is None
    assert found(path, {path: "k"}) == "k"


def test_static_value_ignores_trailing_text() -> None:
    assert lookup(DOC, "!truex") is None
    assert found("!12abc") == 12


# --------------------------------------------------------------------------- modifiers


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        ("@this", [1, 2], [1, 2]),
        ("@pretty", {"a": 1}, {"a": 1}),
        ('@pretty:{"sortKeys":true}', {"a": 1}, {"a": 1}),
        ("@ugly", {"a": 1}, {"a": 1}),
        ("@valid", {"a": 1}, {"a": 1}),
        ("@reverse", {"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ("@reverse", "text", "text"),
        ("@flatten", [1, [2], [3, 4], [5, [6, 7]]], [1, 2, 3, 4, 5, [6, 7]]),
        ('@flatten:{"deep":true}', [1, [2], [3, 4], [5, [6, 7]]], [1, 2, 3, 4, 5, 6, 7]),
        ("@flatten:{bad}", [1, [2, [3]]], [1, 2, [3]]),  # an argument that is no JSON object is ignored
        ("@flatten:[true]", [1, [2, [3]]], [1, 2, [3]]),
        ("@flatten", {"a": 1}, {"a": 1}),
        ("@join", [{"first": "Tom", "age": 37}, {"age": 41}, 5], {"first": "Tom", "age": 41}),
        ('@join:{"preserve":true}', [{"first": "Tom", "age": 37}, {"age": 41}], {"first": "Tom", "age": 37}),
        ("@join", {"a": 1}, {"a": 1}),
        ("@keys", {"first": "Tom", "last": "Smith"}, ["first", "last"]),
        ("@keys", [1, 2], [None, None]),
        ("@keys", 5, [None]),
        ("@values", {"first": "Tom", "last": "Smith"}, ["Tom", "Smith"]),
        ("@values", [1, 2], [1, 2]),
        ("@values", 5, [5]),
        ("@tostr", {"id": 1023, "name": "alert"}, '{"id":1023,"name":"alert"}'),
        ("@fromstr", '{"id":1023,"name":"alert"}', {"id": 1023, "name": "alert"}),
        ("@fromstr", 5, 5),
        ("@group", {"id": ["123", "456"], "name": ["Alice", "Bob"], "x": 1}, [
            {"id": "123", "name": "Alice"},
            {"id": "456", "name": "Bob"},
        ]),
        ("@dig:first", {"first": 1, "a": {"first": 2, "b": [{"first": 3}]}}, [1, 2, 3]),
        ("@reverse|0", [1, 2], 2),
        ("@reverse.0", [1, 2], 2),
        ("@this:", [1], [1]),
        ("@dig:a.b|0", {"a": {"b": 1}, "c": {"a": {"b": 2}}}, 1),
        ("@dig:#(x==1)|#", [[{"x": 1}], [{"x": 2}]], 1),
        ("@dig:{a,b}", {"a": 1, "b": 2}, [{"a": 1, "b": 2}, {}, {}]),  # a multipath always exists
        ("@dig:(a|b)x", {"(a": 1}, []),
    ],
)
def test_modifiers(path: str, data: Any, expected: Any) -> None:
    assert found(path, data) == expected


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("@fromstr", "not json"),
        ("@fromstr", None),
        ("@group", [1]),
        ("@fromstr.a", "nope"),
    ],
)
def test_modifiers_without_result(path: str, data: Any) -> None:
    assert lookup(data, path) is None


def test_unknown_modifier_is_a_key() -> None:
    data = {"@timestamp": "2026-01-01", "@": 1}
    assert found("@timestamp", data) == "2026-01-01"
    assert found("@", data) == 1
    assert found("a.@timestamp", {"a": data}) == "2026-01-01"


def test_modifier_junk_after_name_is_ignored() -> None:
    assert found('@flatten:{"deep":true}junk', [[1, [2]]]) == [1, 2]


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("value", "string", "number", "boolean", "raw", "type_name"),
    [
        ("text", "text", 0.0, False, '"text"', "String"),
        ("", "", 0.0, False, '""', "String"),
        ("2.5", "2.5", 2.5, False, '"2.5"', "String"),
        ("1", "1", 1.0, True, '"1"', "String"),
        ("TRUE", "TRUE", 0.0, True, '"TRUE"', "String"),
        ("tRuE", "tRuE", 0.0, True, '"tRuE"', "String"),
        ("T", "T", 0.0, True, '"T"', "String"),
        ("yes", "yes", 0.0, False, '"yes"', "String"),
        (" 1", " 1", 0.0, False, '" 1"', "String"),
        ("1e400", "1e400", math.inf, False, '"1e400"', "String"),
        (37, "37", 37.0, True, "37", "Number"),
        (0, "0", 0.0, False, "0", "Number"),
        (-4, "-4", -4.0, True, "-4", "Number"),
        (1.0, "1", 1.0, True, "1.0", "Number"),
        (2.5, "2.5", 2.5, True, "2.5", "Number"),
        (1e21, "1000000000000000000000", 1e21, True, "1e21", "Number"),
        (1e-7, "0.0000001", 1e-7, True, "1e-7", "Number"),
        (True, "true", 1.0, True, "true", "True"),
        (False, "false", 0.0, False, "false", "False"),
        (None, "", 0.0, False, "null", "Null"),
        ({"a": [1, "x"]}, '{"a":[1,"x"]}', 0.0, False, '{"a":[1,"x"]}', "JSON"),
        ([1, 2], "[1,2]", 0.0, False, "[1,2]", "JSON"),
    ],
)
def test_conversions(value: Any, string: str, number: float, boolean: bool, raw: str, type_name: str) -> None:
    result = PathResult(value)
    assert result.string() == string
    assert result.float() == number
    assert result.bool() is boolean
    assert orjson.loads(result.raw()) == orjson.loads(raw)
    assert result.type == type_name
    assert result.is_string is isinstance(value, str)


@pytest.mark.parametrize(
    ("text", "value", "ok"),
    [
        ("1", 1.0, True),
        ("-2.5", -2.5, True),
        ("+3", 3.0, True),
        ("1.", 1.0, True),
        (".5", 0.5, True),
        ("1e3", 1000.0, True),
        ("1E-2", 0.01, True),
        ("Inf", math.inf, True),
        ("-infinity", -math.inf, True),
        ("+INF", math.inf, True),
        ("0x1p-2", 0.25, True),
        ("-0X1.8P1", -3.0, True),
        ("1e400", math.inf, False),
        ("0x1p99999", math.inf, False),
        ("", 0.0, False),
        (".", 0.0, False),
        ("abc", 0.0, False),
        (" 1", 0.0, False),
        ("1 ", 0.0, False),
        ("1_000", 0.0, False),
        ("0x10", 0.0, False),
        ("++1", 0.0, False),
        ("--inf", 0.0, False),
        ("+nan", 0.0, False),
    ],
)
def test_go_parse_float(text: str, value: float, ok: bool) -> None:
    assert go_parse_float(text) == (value, ok)


def test_go_parse_float_nan() -> None:
    value, ok = go_parse_float("NaN")
    assert math.isnan(value) and ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(t, True) for t in ("1", "t", "T", "TRUE", "true", "True")],
        *[(t, False) for t in ("0", "f", "F", "FALSE", "false", "False")],
        *[(t, None) for t in ("tRue", "yes", "", " true", "2")],
    ],
)
def test_go_parse_bool(text: str, expected: bool | None) -> None:
    assert go_parse_bool(text) is expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (-0.0, "-0"),
        (100.0, "100"),
        (123456789.125, "123456789.125"),
        (1e21, "1000000000000000000000"),
        (5e-324, "0." + "0" * 323 + "5"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_go_format_float(value: float, text: str) -> None:
    assert go_format_float(value) == text


def test_compact_json() -> None:
    assert compact_json({"a": [1, "é", None]}) == '{"a":[1,"é",null]}'


# --------------------------------------------------------------------------- locations


def test_locations_point_into_the_document() -> None:
    assert lookup(DOC, "friends.1.nets.0") == PathResult("fb", ("friends", 1, "nets", 0))
    assert lookup(DOC, 'friends.#(last=="Craig").age') == PathResult(68, ("friends", 1, "age"))
    assert lookup(DOC, "fr*.2") == PathResult(JANE, ("friends", 2))
    for computed in ("friends.#", "friends.#.age", "friends|0", "@this", "[age]", "!true"):
        result = lookup(DOC, computed)
        assert result is not None and result.location is None


# --------------------------------------------------------------------------- set_path (sjson)


@pytest.mark.parametrize(
    ("doc", "path", "value", "expected"),
    [
        # sjson README
        ({"name": {"first": "Janet", "last": "Prichard"}, "age": 47}, "name.last", "Anderson",
         {"name": {"first": "Janet", "last": "Anderson"}, "age": 47}),
        (None, "name", "Tom", {"name": "Tom"}),
        (None, "name.last", "Anderson", {"name": {"last": "Anderson"}}),
        ({"name": {"last": "Anderson"}}, "name.first", "Sara",
         {"name": {"last": "Anderson", "first": "Sara"}}),
        ({"name": {"last": "Anderson"}}, "name.last", "Smith", {"name": {"last": "Smith"}}),
        ({"friends": ["Andy", "Carol"]}, "friends.2", "Sara", {"friends": ["Andy", "Carol", "Sara"]}),
        ({"friends": ["Andy", "Carol"]}, "friends.1", "Sara", {"friends": ["Andy", "Sara"]}),
        ({"friends": ["Andy", "Carol"]}, "friends.-1", "Sara", {"friends": ["Andy", "Carol", "Sara"]}),
        ({"friends": ["Andy", "Carol"]}, "friends.4", "Sara",
         {"friends": ["Andy", "Carol", None, None, "Sara"]}),
        ({"friends": ["Andy", "Carol"]}, "friends.#()#", "Sara", {"friends": ["Sara", "Sara"]}),
        ({"users": {"2313": {"name": "Sara"}}}, "users.:2313.name", "Andy",
         {"users": {"2313": {"name": "Andy"}}}),
        # creation of containers
        ({}, "a.2.b", 1, {"a": [None, None, {"b": 1}]}),
        ({}, "a.-1.b", 1, {"a": [{"b": 1}]}),
        ({}, "a.:2.b", 1, {"a": {"2": {"b": 1}}}),
        ({}, "a.:-1", 1, {"a": {"-1": 1}}),
        ({}, "a.0", "x", {"a": ["x"]}),
        (None, "0", "x", ["x"]),
        (None, "2", "x", [None, None, "x"]),
        (None, "-1", "x", {"-1": "x"}),  # only digits make the empty document an array
        ("scalar", "a", 1, {"a": 1}),
        ({"a": 5}, "a.b", 1, {"a": {"b": 1}}),
        ({"a": None}, "a.0", 1, {"a": [1]}),
        ({"a": "x"}, "a.-1", 1, {"a": {"-1": 1}}),
        ({"a": "x"}, "a.1", 1, {"a": [None, 1]}),
        ([], "0", 1, [1]),
        ([], "3", 1, [None, None, None, 1]),
        ([1, 2], "0", 9, [9, 2]),
        ([1, 2], "5", 9, [1, 2, None, None, None, 9]),
        ([[1], [2]], "1.0", 9, [[1], [9]]),
        ([{"a": 1}], "0.b", 2, [{"a": 1, "b": 2}]),
        # objects: digit components are keys
        ({"a": {}}, "a.0", 1, {"a": {"0": 1}}),
        ({"a": {"0": 5}}, "a.0", 1, {"a": {"0": 1}}),
        ({"a": {}}, "a.-1", 1, {"a": {"-1": 1}}),
        # escapes
        ({}, "labels.app\\.kubernetes\\.io/name", "x", {"labels": {"app.kubernetes.io/name": "x"}}),
        ({}, "a\\*b", 1, {"a*b": 1}),
        ({}, "a\\#b", 1, {"a#b": 1}),
        ({}, "a\\\\b", 1, {"a\\b": 1}),
        ({}, "end\\", 1, {"end": 1}),
        ({}, "a:b", 1, {"a:b": 1}),
        # empty components
        ({}, "a..b", 1, {"a": [{"b": 1}]}),  # sjson: an empty component counts as index 0
        ({}, "a.", 1, {"a": [1]}),
        ({"a": {}}, "a.", 1, {"a": {"": 1}}),
        ([], "", 1, "unused"),  # replaced below: empty path is an error
        # any JSON value
        ({"k": 1}, "k", {"x": [1, None]}, {"k": {"x": [1, None]}}),
        ({"k": 1}, "k", None, {"k": None}),
        # complex paths replace what they find, as sjson does
        ({"f": [{"n": "a"}, {"n": "b"}, {"m": 1}]}, "f.#.n", "z", {"f": [{"n": "z"}, {"n": "z"}, {"m": 1}]}),
        ({"f": [{"n": "a", "k": 1}, {"n": "b", "k": 2}]}, "f.#(k>1).n", "z",
         {"f": [{"n": "a", "k": 1}, {"n": "z", "k": 2}]}),
        ({"f": [{"n": "a", "k": 1}, {"n": "b", "k": 2}]}, "f.#(k>0)#.n", "z",
         {"f": [{"n": "z", "k": 1}, {"n": "z", "k": 2}]}),
        ({"ab": 1, "ac": 2}, "a*", 0, {"ab": 0, "ac": 2}),
        ({"ab": 1}, "a?", 0, {"ab": 0}),
        ({"ab": 1}, "x*", 0, {"ab": 1}),  # nothing found: unchanged
        ({"a": [1, 2]}, "a.#", 0, {"a": [1, 2]}),  # a count is not in the document
        ({"a": {"b": 1}}, "a|b", 0, {"a": {"b": 1}}),  # after a pipe the place is unknown
        ({"a": 1}, "@this", 0, {"a": 1}),
        ({"f": [{"n": "a"}]}, "f.#.n|0", 0, {"f": [{"n": "a"}]}),
        ({"f": [{"t": [{"n": 1}]}]}, "f.#.t|@this", 0, {"f": [{"t": [{"n": 1}]}]}),
        ({"f": [{"t": {"u": 1}}, {"t": {"u": 2}}]}, "f.#.t|u", 0, {"f": [{"t": {"u": 1}}, {"t": {"u": 2}}]}),
    ],
)
def test_set_path(doc: Any, path: str, value: Any, expected: Any) -> None:
    if path == "":
        with pytest.raises(PathError, match="path cannot be empty"):
            set_path(doc, path, value)
        return
    before = copy.deepcopy(doc)
    assert set_path(doc, path, value) == expected
    assert doc == before, "the input document must not change"


@pytest.mark.parametrize(("doc", "path"), [([1, 2], "x"), ({"a": []}, "a.x.y"), ({"a": [1]}, "a.:0x")])
def test_set_path_non_numeric_key_on_array(doc: Any, path: str) -> None:
    with pytest.raises(PathError, match="cannot set array element for non-numeric key"):
        set_path(doc, path, 1)


def test_set_path_forced_key_on_existing_array_index_replaces_it() -> None:
    # sjson looks the component up without the ':'; only creation is forced to be a key
    assert set_path({"a": [1, 2]}, "a.:1", 9) == {"a": [1, 9]}
    with pytest.raises(PathError):
        set_path({"a": [1, 2]}, "a.:5", 9)


def test_set_path_result_shares_untouched_branches_only() -> None:
    doc = {"a": {"b": 1}, "c": {"d": 2}}
    new = set_path(doc, "a.b", 5)
    assert new["c"] is doc["c"]
    assert new["a"] is not doc["a"]
