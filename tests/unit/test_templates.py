"""Go text/template + sprig, as Argo Events renders filter and parameter templates.

Expectations come from Go's and sprig's documented behaviour (the examples of the sprig docs, the
``regexp`` package docs, ``fmt`` rules), not from this implementation.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sensors import templates
from sensors.templates import (
    FORBIDDEN_FUNCTIONS,
    FUNCTIONS,
    Template,
    TemplateError,
    compile_template,
    render,
)


def run(text: str, value: Any = None) -> str:
    """Render ``text`` the way Argo does: the dot is ``{"Input": value}``."""
    return render(text, {"Input": value})


def table(*rows: tuple[Any, ...]) -> pytest.MarkDecorator:
    """One test per row; the id is the start of the row's first element."""
    return pytest.mark.parametrize("row", rows, ids=[str(row[0])[:60] for row in rows])


# --------------------------------------------------------------------------- real manifests

MANIFEST_DATA = {
    "body": {
        "name": "Sample File",
        "message": "hello",
        "kind": "fastq",
        "files": ["first.fastq.gz", "second.fastq.gz"],
        "key": "runs/2024/S12_R1.fastq.gz",
        "data": base64.b64encode(json.dumps({"z": 1, "a": [1, "x"]}).encode()).decode(),
        "items": [1, 2, 3],
        "a": "left",
    },
}


@table(
    ("{{ .Input.body.name | nospace | lower }}-", "samplefile-"),
    ("{{ .Input.body.message }}", "hello"),
    ("{{ upper .Input.body.message }}", "HELLO"),
    ('{{ if eq .Input.body.kind "fastq" }}yes{{ else }}no{{ end }}', "yes"),
    ('{{ if eq .Input.body.kind "bam" }}yes{{ else }}no{{ end }}', "no"),
    ("{{ index .Input.body.files 0 }}", "first.fastq.gz"),
    ('{{ .Input.body.key | trimSuffix ".fastq.gz" | splitList "/" | last }}', "S12_R1"),
    ("{{ b64dec .Input.body.data | fromJson | toJson }}", '{"a":[1,"x"],"z":1}'),
    ('{{ regexFind "S[0-9]+" .Input.body.key }}', "S12"),
    ('{{ default "none" .Input.body.missing }}', "none"),
    ('{{ .Input.body.missing | default "none" }}', "none"),
    ("{{ len .Input.body.items }}", "3"),
    ("[ {{- .Input.body.a -}} ]", "[left]"),
    ("a{{/* comment */}}b", "ab"),
    ('{{ printf "%s-%d" .Input.body.a 3 }}', "left-3"),
    ("{{ $x := .Input.body.a }}{{ $x }}", "left"),
    ("{{ range .Input.body.items }}{{ . }},{{ end }}", "1,2,3,"),
    ("{{ with .Input.body.a }}{{ . }}{{ end }}", "left"),
)
def test_real_manifest_examples(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text, MANIFEST_DATA) == expected


def test_data_filter_input_is_a_string() -> None:
    assert run("{{ upper .Input }}", "fastq") == "FASTQ"


# --------------------------------------------------------------------------- printing values


@table(
    ("string", "text", "text"),
    ("empty string", "", ""),
    ("integral float", 3.0, "3"),
    ("python int is a JSON number", 3, "3"),
    ("fraction", 1.5, "1.5"),
    ("negative", -2.25, "-2.25"),
    ("negative zero", -0.0, "-0"),
    ("six digits", 123456.0, "123456"),
    ("seven digits use an exponent", 1234567, "1.234567e+06"),
    ("million", 1e6, "1e+06"),
    ("1e21", 1e21, "1e+21"),
    ("small", 0.0001, "0.0001"),
    ("smaller", 0.00001, "1e-05"),
    ("big int loses precision", 2**53 + 1, "9.007199254740992e+15"),
    ("true", True, "true"),
    ("false", False, "false"),
    ("null", None, "<no value>"),
    ("list", [1, "a", None, [2, 3], True], "[1 a <nil> [2 3] true]"),
    ("tuple", (1, 2), "[1 2]"),
    ("empty list", [], "[]"),
    ("map sorted", {"b": 1, "a": {"d": None, "c": [1]}}, "map[a:map[c:[1] d:<nil>] b:1]"),
    ("empty map", {}, "map[]"),
)
def test_values_print_as_go_percent_v(row: tuple[str, Any, str]) -> None:
    _, value, expected = row
    assert run("{{ .Input }}", value) == expected


def test_missing_keys_print_no_value() -> None:
    assert run("{{ .Input.nope }}", {}) == "<no value>"
    assert run("{{ .Input.nope.deeper.still }}", {}) == "<no value>"
    assert run("{{ $.Input.nope }}", {}) == "<no value>"


def test_data_is_copied_not_changed() -> None:
    data = {"Input": {"a": 1}}
    assert render('{{ $_ := set .Input "b" 2 }}{{ .Input }}', data) == "map[a:1 b:2]"
    assert data == {"Input": {"a": 1}}


@table(
    ("object", object(), "not object"),
    ("int key", {1: "a"}, "map key 1 is a int"),
)
def test_data_must_be_json_like(row: tuple[str, Any, str]) -> None:
    _, value, message = row
    with pytest.raises(TemplateError, match=message) as info:
        render("{{ . }}", value)
    assert info.value.line is None


# --------------------------------------------------------------------------- literals


@table(
    ("{{ true }}{{ false }}", "truefalse"),
    ('{{ "a\\tb\\u00e9\\x41\\101\\"" }}', 'a\tbéAA"'),
    ("{{ `raw \\n` }}", "raw \\n"),
    ("{{ `a\r\nb` }}", "a\nb"),
    ("{{ 1.5 }} {{ -3 }} {{ +4 }} {{ .5 }}", "1.5 -3 4 0.5"),
    ("{{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b101 }} {{ 1_000 }}", "31 15 15 5 1000"),
    ("{{ 1e3 }} {{ 0x1p-2 }} {{ 2.0 }}", "1000 0.25 2"),
    ("{{ 'a' }} {{ '\\n' }} {{ '\\x41' }} {{ '\\101' }} {{ '\\u00e9' }} {{ '\\'' }}", "97 10 65 65 233 39"),
    ("{{ 9223372036854775807 }}", "9223372036854775807"),
    ("{{ 1e19 }}", "1e+19"),
)
def test_literals(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


# --------------------------------------------------------------------------- whitespace and comments


@table(
    ("a \n\t {{- 1 -}} \n b", "a1b"),
    ("a {{- 1 }} b", "a1 b"),
    ("a {{ 1 -}} \n b", "a 1b"),
    ("a {{-3}} b", "a -3 b"),
    ("{{- 1 -}}", "1"),
    ("a {{- /* c */ -}} b", "ab"),
    ("a {{/* c\nmore */}} b", "a  b"),
    ("x{{/* c */ -}}   y", "xy"),
    ("{{ 1 }}\n{{ 2 }}", "1\n2"),
    ("{{\n1\n}}", "1"),
    ("{{ 1 -}}", "1"),
    ("{{ 1  -}}  x", "1x"),
    ("{{ 1\t\n -}}\n x", "1x"),
)
def test_trim_markers_and_comments(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


# --------------------------------------------------------------------------- actions

_IF_CHAIN = "{{ if eq .Input 1.0 }}one{{ else if eq .Input 2.0 }}two{{ else }}other{{ end }}"


@pytest.mark.parametrize(("value", "expected"), [(1, "one"), (2, "two"), (3, "other")])
def test_if_else_if_else(value: int, expected: str) -> None:
    assert run(_IF_CHAIN, value) == expected


@pytest.mark.parametrize(
    ("value", "truth"),
    [
        (0, False),
        (0.0, False),
        ("", False),
        ([], False),
        ({}, False),
        (None, False),
        (False, False),
        (1, True),
        (-1.5, True),
        ("0", True),
        ([0], True),
        ({"a": 0}, True),
        (True, True),
        (float("nan"), True),
    ],
)
def test_truthiness(value: Any, truth: bool) -> None:
    assert run("{{ if .Input }}T{{ else }}F{{ end }}", value) == ("T" if truth else "F")


def test_if_on_a_missing_key_is_false() -> None:
    assert run("{{ if .Input.missing }}T{{ else }}F{{ end }}", {}) == "F"


@table(
    ({"a": "x"}, "x"),
    ({"b": "y"}, "b:y"),
    ({}, "none"),
)
def test_with_else_with(row: tuple[Any, str]) -> None:
    value, expected = row
    text = "{{ with .Input.a }}{{ . }}{{ else with .Input.b }}b:{{ . }}{{ else }}none{{ end }}"
    assert run(text, value) == expected


@table(
    ("{{ range .Input }}{{ . }};{{ end }}", [1, "a"], "1;a;"),
    ("{{ range $i, $v := .Input }}{{ $i }}={{ $v }} {{ end }}", ["a", "b"], "0=a 1=b "),
    ("{{ range $k, $v := .Input }}{{ $k }}={{ $v }} {{ end }}", {"b": 2, "a": 1}, "a=1 b=2 "),
    ("{{ range $v := .Input }}{{ $v }}{{ end }}", {"b": 2, "a": 1}, "12"),
    ("{{ range .Input }}x{{ else }}empty{{ end }}", [], "empty"),
    ("{{ range .Input }}x{{ else }}empty{{ end }}", None, "empty"),
    ("{{ range .Input.missing }}x{{ end }}", {}, ""),
    ("{{ range .Input }}{{ .name }}{{ end }}", [{"name": "a"}, {"name": "b"}], "ab"),
    ("{{ range .Input }}{{ . }}{{ end }}", [None], "<no value>"),
    ("{{ range .Input }}{{ $.Input | len }}{{ end }}", [1, 2], "22"),
    (
        "{{ range .Input }}{{ if eq . 3.0 }}{{ break }}{{ end }}{{ if eq . 1.0 }}{{ continue }}{{ end }}"
        "{{ . }}{{ end }}",
        [1, 2, 3, 4],
        "2",
    ),
    ("{{ $i := 0 }}{{ $v := 0 }}{{ range $i, $v = .Input }}{{ end }}{{ $i }}-{{ $v }}", ["a", "b"], "1-b"),
    ("{{ $v := 0 }}{{ range $v = .Input }}{{ end }}{{ $v }}", ["a", "b"], "b"),
    ('{{ range splitList "," "a,b" }}[{{ . }}]{{ end }}', None, "[a][b]"),
    ("{{ range $i, $c := until 3 }}{{ $i }}{{ end }}", None, "012"),
)
def test_range(row: tuple[str, Any, str]) -> None:
    text, value, expected = row
    assert run(text, value) == expected


@table(
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }}", "32"),
    ("{{ $x := 1 }}{{ $x }}{{ $x := 2 }}{{ $x }}", "12"),
    ("{{ with $x := 5 }}{{ $x }}{{ end }}", "5"),
    ("{{ if $x := 0 }}a{{ else }}{{ $x }}{{ end }}", "0"),
    ('{{ $x := dict "a" (dict "b" 7) }}{{ $x.a.b }}', "7"),
    ("{{ $x := .Input }}{{ $x.missing.more }}", "<no value>"),
    ("{{ $ }}", "map[Input:<nil>]"),
    ("{{ $x := 1 }}", ""),
    ("{{ ($x := 4) }} {{ $x }}", "4 4"),
)
def test_variables(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


@table(
    ("{{ (index .Input.items 0).name }}", "first"),
    ('{{ (dict "a" (dict "b" 5)).a.b }}', "5"),
    ("{{ (.Input.missing).x }}", "<no value>"),
    ("{{ (first (list)).x }}", "<no value>"),
    ('{{ .Input.items | len | printf "%d items" }}', "2 items"),
    ("{{ (len .Input.items) }}", "2"),
    ("{{ .Input | and 1 }}", "map[items:[map[name:first] map[name:second]]]"),
)
def test_fields_chains_and_pipes(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text, {"items": [{"name": "first"}, {"name": "second"}]}) == expected


# --------------------------------------------------------------------------- parse errors


@table(
    ("{{ uper .Input }}", 'unknown function "uper" at 1:4 in \'{{ uper .Input }}\'; did you mean "upper"?'),
    (
        "{{ zzzzqqq }}",
        "unknown function \"zzzzqqq\" at 1:4 in '{{ zzzzqqq }}'; see sensors.templates.FUNCTIONS",
    ),
    ('{{ trimPrefix "a" }}', "wrong number of args for trimPrefix: want 2 got 1 at 1:4"),
    ('{{ "a" | trimPrefix }}', "wrong number of args for trimPrefix: want 2 got 1 at 1:10"),
    ('{{ "a" | upper "b" }}', "wrong number of args for upper: want 1 got 2 at 1:10"),
    ("{{ printf }}", "wrong number of args for printf: want at least 1 got 0"),
    ('{{ printf "%s" upper }}', "wrong number of args for upper: want 1 got 0 at 1:16"),
    ("{{ upper.x }}", "wrong number of args for upper: want 1 got 0"),
    ("line one\n  {{ uper }}", "unknown function \"uper\" at 2:6 in '  {{ uper }}'"),
    ("{{ now }}", 'function "now" is not allowed: it reads the clock'),
    ("{{ uuidv4 }}", 'function "uuidv4" is not allowed: it is non-deterministic'),
    ('{{ env "HOME" }}', 'function "env" is not allowed: it reads the process environment'),
    ('{{ semver "1.0.0" }}', 'function "semver" (sprig) is not supported by triggergate'),
    ("{{ if .x }}a", "{{if}} is not closed: missing {{end}} at 1:1"),
    ("{{ range .x }}{{ with .y }}a{{ end }}", "{{range}} is not closed: missing {{end}} at 1:1"),
    ("{{ end }}", "unexpected {{end}} at 1:4"),
    ("{{ else }}", "unexpected {{else}} at 1:4"),
    ("{{ if .x }}{{ else }}{{ else }}{{ end }}", "expected {{end}} for {{if}}; found {{else}}"),
    ("{{ range .x }}{{ else if .y }}{{ end }}{{ end }}", 'unexpected "if" in input'),
    ("{{ if .x }}{{ else with .y }}{{ end }}{{ end }}", 'unexpected "with" in input'),
    ("{{ break }}", "{{break}} outside {{range}}"),
    ("{{ range .x }}{{ end }}{{ continue }}", "{{continue}} outside {{range}}"),
    ("{{ range .x }}{{ break 1 }}{{ end }}", 'unexpected "1" in {{break}}'),
    ("{{ if .x }}{{ end 1 }}", 'unexpected "1" in end'),
    ("{{ if .x }}{{ else 1 }}{{ end }}", 'unexpected "1" in else'),
    ('{{ define "x" }}{{ end }}', "{{define}} is not supported"),
    ('{{ template "x" }}', "{{template}} is not supported"),
    ("{{ .x", "unclosed action (missing }}) at 1:1"),
    ("{{ (.x }}", "unclosed left paren"),
    ("{{ .x) }}", "unexpected right paren"),
    ('{{ "abc }}', "unterminated quoted string"),
    ('{{ "a\nb" }}', "unterminated quoted string"),
    ("{{ `abc }}", "unterminated raw quoted string"),
    ("{{ 'ab' }}", "malformed character constant"),
    ("{{ '\\q' }}", "malformed character constant"),
    ("{{ 'a }}", "unterminated character constant"),
    ('{{ "\\q" }}', "invalid string literal"),
    ('{{ "\\x4" }}', "bad \\x escape"),
    ('{{ "\\ud800" }}', "not a valid character"),
    ('{{ "\\400" }}', "bad octal escape"),
    ("{{ 1x }}", 'bad number syntax: "1x"'),
    ("{{ 1-2 }}", 'bad number syntax: "1-"'),
    ("{{ 3i }}", "complex number 3i is not supported"),
    ("{{ 99999999999999999999 }}", 'integer overflow: "99999999999999999999"'),
    ("{{ 0x1.8 }}", 'illegal number syntax: "0x1.8"'),
    ("{{ - }}", 'illegal number syntax: "-"'),
    ("{{ 1e999 }}", "number 1e999 is out of range"),
    ("{{ $x = 1 }}", 'undefined variable "$x" (declare it with :=)'),
    ("{{ $x }}", 'undefined variable "$x"'),
    ("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", 'undefined variable "$y"'),
    ("{{ $a, $b := .x }}", "too many declarations in command"),
    ("{{ range $a, $b, $c := .x }}{{ end }}", "too many declarations in range"),
    ("{{ range $a, 1 }}{{ end }}", "range can only initialize variables"),
    ("{{ .x | }}", "missing command after '|'"),
    ("{{ | .x }}", 'unexpected "|" in command'),
    ("{{ .x | | .y }}", 'unexpected "|" in command at 1:9'),
    ('{{ "a\\\n" }}', "unterminated quoted string"),
    ("{{ '\\ud800' }}", "malformed character constant"),
    ("{{ .x | 1 }}", "non executable command in pipeline stage 2"),
    ("{{ }}", "missing value for command"),
    ("{{ if }}{{ end }}", "missing value for if"),
    ('{{ "a".b }}', 'unexpected . after term "\\"a\\""'),
    ("{{ a:b }}", "expected :="),
    ("{{ .x ! }}", 'unexpected "!" in operand'),
    ("{{ .a.b@ }}", 'bad character "@"'),
    ("{{ abc@ }}", 'bad character "@"'),
    ("{{ \u2603 }}", "unrecognized character in action: U+2603"),
    ("{{ .x }} {{ if }}", "missing value for if at 1:16"),
    ("{{ .x := 1 }}", 'unexpected ":=" in operand'),
    ("{{ (1 }}", "unclosed left paren at 1:7"),
    ("{{ (1 | }}", "unclosed left paren"),
    ("{{/* x */ }}", "comment ends before closing delimiter"),
    ("{{/* x", "unclosed comment"),
    ("{{ if (", "unclosed action (missing }}) at 1:1"),
)
def test_parse_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError) as info:
        compile_template(text)
    assert message in str(info.value)


def test_error_carries_its_place() -> None:
    with pytest.raises(TemplateError) as info:
        compile_template("ok\n{{ uper .Input }}")
    error = info.value
    assert (error.line, error.column, error.reason) == (2, 4, 'unknown function "uper"')
    assert error.template == "ok\n{{ uper .Input }}"
    assert isinstance(error, ValueError)


def test_error_excerpt_of_a_long_line_is_cut_around_the_place() -> None:
    text = "x" * 100 + "{{ uper }}" + "y" * 100
    with pytest.raises(TemplateError) as info:
        compile_template(text)
    message = str(info.value)
    assert "at 1:104 in '..." in message and "{{ uper }}" in message and "...'" in message
    start = "{{ uper }}" + "y" * 100
    with pytest.raises(TemplateError, match=r"in '\{\{ uper \}\}y+\.\.\.'"):
        compile_template(start)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(TemplateError, match="nests too deeply"):
        compile_template("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}")
    nested: Any = 1
    for _ in range(3000):
        nested = [nested]
    with pytest.raises(TemplateError, match="nests too deeply"):
        run("{{ .Input }}", nested)


def test_deeply_nested_value_inside_a_function() -> None:
    text = "{{ $x := list }}{{ range until 3000 }}{{ $x = list $x }}{{ end }}{{ toJson $x }}"
    with pytest.raises(TemplateError, match="error calling toJson: the value nests too deeply"):
        run(text)


# --------------------------------------------------------------------------- execution errors

EXEC_DATA = {"n": 3, "s": "str", "nul": None, "list": [1, 2], "nulls": [None], "m": {"a": 1}}


@table(
    (
        "{{ eq .Input.n 3 }}",
        "error calling eq: incompatible types for comparison: float64 and int (JSON numbers",
    ),
    (
        "{{ upper .Input.n }}",
        "wrong type for argument 1 of upper: expected string, got float64 (convert it with",
    ),
    ("{{ upper .Input.missing }}", "invalid value; expected string (the value is missing)"),
    ("{{ upper .Input.list }}", "wrong type for argument 1 of upper: expected string, got []interface {} at"),
    ("{{ .Input.n | upper }}", "wrong type for argument 1 of upper: expected string, got float64"),
    ('{{ trunc .Input.n "abc" }}', "expected int, got float64 (convert it with int)"),
    ('{{ substr 0 (sub 3 1) "abcdef" }}', "wrong type for argument 2 of substr: expected int, got int64"),
    ("{{ upper nil }}", "cannot assign nil to string"),
    ("{{ upper 1 }}", "expected string; found 1"),
    ('{{ repeat "x" "y" }}', 'expected integer; found "x"'),
    ("{{ round 1.5 1.5 }}", "expected integer; found 1.5"),
    ('{{ ternary 1 2 "x" }}', 'expected bool; found "x"'),
    ('{{ get "x" "a" }}', 'expected map[string]interface {}; found "x"'),
    ('{{ get .Input.s "a" }}', "expected map[string]interface {}, got string"),
    ('{{ round 1 2 "x" }}', 'expected float; found "x"'),
    ("{{ .Input.s.x }}", "can't evaluate field x in type string at 1:4"),
    ("{{ .Input.nul.x }}", "nil pointer evaluating interface {}.x (the value before .x is null)"),
    ("{{ range .Input.nulls }}{{ .x }}{{ end }}", "nil pointer evaluating interface {}.x"),
    ("{{ .Input.m 1 }}", "m is not a method but has arguments"),
    ("{{ 1 | .Input.m }}", "m is not a method but has arguments"),
    ("{{ $x := 1 }}{{ $x 2 }}", "can't give argument to non-function $x"),
    ("{{ (1) 2 }}", "can't give argument to non-function (1)"),
    ("{{ 1 2 }}", "can't give argument to non-function 1"),
    (
        '{{ $x := 1 }}{{ (.a.b | print nil true $x.y (list).z . 1 "s") 2 }}',
        'can\'t give argument to non-function (.a.b | print nil true $x.y (list).z . 1 "s")',
    ),
    ("{{ upper true }}", "expected string; found true"),
    ("{{ . 2 }}", "can't give argument to non-function ."),
    ("{{ nil }}", "nil is not a command"),
    ('{{ fail "boom" }}', "error calling fail: boom at 1:4"),
    ("{{ range .Input.s }}{{ end }}", "range can't iterate over str (a string)"),
    ("{{ range 3 }}{{ end }}", "range can't iterate over 3 (a int)"),
    ("{{ 18446744073709551615 }}", "18446744073709551615 overflows int"),
    ("{{ coalesce.x }}", "nil pointer evaluating interface {}.x"),
    ("{{ hello.x }}", "can't evaluate field x in type string"),
)
def test_execution_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError) as info:
        run(text, EXEC_DATA)
    assert message in str(info.value)


def test_argument_conversions_that_work() -> None:
    assert run('{{ substr 0 (int (sub 3 1)) "abcdef" }}') == "ab"
    assert run("{{ upper hello }}") == "HELLO!"
    assert run('{{ upper (dict "a" "x").a }}') == "X"
    assert run('{{ get .Input.missing "a" }}', {}) == ""
    assert run('{{ get nil "a" }}') == ""
    assert run("{{ .Input.n | toString | upper }}", {"n": 2}) == "2"


def test_render_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "MAX_STEPS", 20)
    assert run("{{ range .Input }}{{ end }}", list(range(5))) == ""
    with pytest.raises(TemplateError, match="render took more than 20 steps") as info:
        run("{{ range .Input }}{{ end }}", list(range(50)))
    assert info.value.line is None


def test_output_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "MAX_OUTPUT", 10)
    assert run("0123456789") == "0123456789"
    with pytest.raises(TemplateError, match="output is longer than 10 characters"):
        run("{{ range .Input }}abcd{{ end }}", [1, 2, 3])
    with pytest.raises(TemplateError, match="error calling repeat: result is longer than 10 characters"):
        run('{{ repeat 11 "x" }}')
    with pytest.raises(TemplateError, match="error calling printf: result is longer"):
        run('{{ printf "%20d" 1 }}')
    with pytest.raises(TemplateError, match="error calling until: result has more than 10 elements"):
        run("{{ until 11 }}")


# --------------------------------------------------------------------------- builtins


@table(
    ("{{ and 1 0 2 }}", "0"),
    ("{{ and 1 2 }}", "2"),
    ('{{ or 0 "" "x" }}', "x"),
    ('{{ or 0 "" }}', ""),
    ('{{ and false (fail "not evaluated") }}', "false"),
    ('{{ or true (fail "not evaluated") }}', "true"),
    ("{{ 1 | and 2 }}", "1"),
    ("{{ 0 | and 2 }}", "0"),
    ('{{ 0 | or "" }}', "0"),
    ("{{ and .Input.missing 1 }}", "<no value>"),
    ("{{ not 0 }} {{ not 1 }} {{ not .Input.missing }}", "true false true"),
    ("{{ eq 1 1 }} {{ eq 1 2 }} {{ eq 1.5 1.5 }} {{ eq true true }}", "true false true true"),
    ('{{ eq "a" "b" "a" }} {{ eq "a" "b" "c" }}', "true false"),
    ('{{ eq .Input.missing nil }} {{ eq nil nil }} {{ eq .Input.missing "x" }}', "true true false"),
    ('{{ eq "x" .Input.missing }}', "false"),
    ('{{ eq (index "a" 0) 97 }}', "true"),
    ("{{ ne 1 2 }} {{ ne 1 1 }}", "true false"),
    ('{{ lt 1 2 }} {{ lt "a" "b" }} {{ lt 2.5 1.5 }}', "true true false"),
    (
        "{{ le 2 2 }} {{ le 3 2 }} {{ gt 3 2 }} {{ gt 2 2 }} {{ ge 2 2 }} {{ ge 2 3 }}",
        "true false true false true false",
    ),
    ('{{ len "héllo" }} {{ len (dict "a" 1) }} {{ len (list) }}', "6 1 0"),
    ('{{ index "abc" 1 }}', "98"),
    ('{{ index (dict "a" 1) "a" }} {{ index (dict "a" 1) "b" }}', "1 <no value>"),
    ('{{ index (split "," "a,b") "_9" | printf "%q" }}', '""'),
    ('{{ index .Input.m "a" 1 }}', "y"),
    ("{{ index (list 1 2) }}", "[1 2]"),
    ('{{ print 1 2 }} {{ print "a" 1 2 "b" }} {{ print nil 1 }}', "1 2 a1 2b <nil> 1"),
    ('{{ println 1 "a" }}', "1 a\n"),
    ('{{ html "<a href=\'x\'>&\\"</a>" }}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"),
    ('{{ html 1 2 }} {{ html .Input.missing }} {{ html "\\x00" }}', "1 2 &lt;no value&gt; \ufffd"),
    ('{{ js "a\'b\\"c<d>&e=f\\\\" }}', "a\\'b\\\"c\\u003Cd\\u003E\\u0026e\\u003Df\\\\"),
    ('{{ js "\\t\\u0085é" }}', "\\u0009\\u0085é"),
    ('{{ urlquery "a b&c=d/é" }}', "a+b%26c%3Dd%2F%C3%A9"),
)
def test_builtins(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text, {"m": {"a": ["x", "y"]}}) == expected


@table(
    ("{{ eq 1 1.0 }}", "incompatible types for comparison: int and float64"),
    ('{{ eq 1 "1" }}', "incompatible types for comparison: int and string"),
    ("{{ eq (list 1) (list 1) }}", "non-comparable type []interface {}"),
    ("{{ eq 1 }}", "missing argument for comparison"),
    ("{{ lt true false }}", "invalid type for comparison: bool"),
    ("{{ lt nil 1 }}", "invalid type for comparison: <nil> and int"),
    ('{{ lt 1 "a" }}', "incompatible types for comparison"),
    ("{{ le (list) 1 }}", "invalid type for comparison"),
    ("{{ gt 1 nil }}", "invalid type for comparison"),
    ("{{ ge 1.5 1 }}", "incompatible types for comparison"),
    ("{{ len .Input.missing }}", "len of nil pointer"),
    ("{{ len 3 }}", "len of type int"),
    ("{{ index nil 1 }}", "index of untyped nil"),
    ('{{ index (list 1) "x" }}', "cannot index slice/array with type string"),
    ("{{ index (list 1) nil }}", "cannot index slice/array with nil"),
    ("{{ index (list 1) 1.0 }}", "cannot index slice/array with type float64"),
    ("{{ index (list 1) 1 }}", "index out of range: 1"),
    ("{{ index (list 1) -1 }}", "index out of range: -1"),
    ("{{ index (list nil) 0 1 }}", "index of nil pointer"),
    ("{{ index (dict) 1 }}", "value has type int; should be string"),
    ("{{ index (dict) nil }}", "value is nil; should be of type string"),
    ("{{ index 5 0 }}", "can't index item of type int"),
)
def test_builtin_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError, match="error calling") as info:
        run(text, {})
    assert message in str(info.value)


# --------------------------------------------------------------------------- printf


@table(
    ('{{ printf "%5d|%-5d|%05d|%-05d" 42 42 42 42 }}', "   42|42   |00042|42   "),
    ('{{ printf "%+d % d %+d" 5 5 -5 }}', "+5  5 -5"),
    ('{{ printf "%05d|%+05d" -42 42 }}', "-0042|+0042"),
    ('{{ printf "%x %X %o %O %b" 255 255 8 8 5 }}', "ff FF 10 0o10 101"),
    ('{{ printf "%#x %#X %#o %#b %#o" 255 255 8 5 0 }}', "0xff 0XFF 010 0b101 0"),
    ('{{ printf "%#08x" 255 }}', "0x000000ff"),
    ('{{ printf "%.3d|%.0d|%5.0d|" 7 0 0 }}', "007||     |"),
    ('{{ printf "%c %U %#U %q %q %#q" 65 65 65 65 10 65 }}', "A U+0041 U+0041 'A' 'A' '\\n' 'A'"),
    ('{{ printf "%c|%q|%+q" 128512 128512 233 }}', "\U0001f600|'\U0001f600'|'\\u00e9'"),
    ('{{ printf "%c" -1 }}', "\ufffd"),
    ('{{ printf "%v %d" (index "a" 0) (index "a" 0) }}', "97 97"),
    ('{{ printf "%#v" (index "a" 0) }}', "0x61"),
    ('{{ printf "%.2f %e %g %G" 3.14159 1234.5678 0.00001 0.0000001 }}', "3.14 1.234568e+03 1e-05 1E-07"),
    (
        '{{ printf "%E %.3g %g %g" 1234.5678 1234.5678 100000.0 1000000.0 }}',
        "1.234568E+03 1.23e+03 100000 1e+06",
    ),
    (
        '{{ printf "%8.3f|%-8.3f|%08.3f|%08.3f" 3.14159 3.14159 3.14159 -3.14159 }}',
        "   3.142|3.142   |0003.142|-003.142",
    ),
    ('{{ printf "%+.1f % .2f %+08.2f" 2.0 3.14159 3.14159 }}', "+2.0  3.14 +0003.14"),
    ('{{ printf "%f %.1f %F" 1.0 0.05 2.5 }}', "1.000000 0.1 2.500000"),
    ('{{ printf "%6.2v|%v|%v" 3.14159 1e21 -0.0 }}', "   3.1|1e+21|-0"),
    ('{{ printf "%e %e" 0.0 1e-300 }}', "0.000000e+00 1.000000e-300"),
    ('{{ printf "%x %X %x %b" 1.5 1.5 0.0 1.0 }}', "0x1.8p+00 0X1.8P+00 0x0p+00 4503599627370496p-52"),
    ('{{ printf "%b %x" 0.0 -2.0 }}', "0p-1074 -0x1p+01"),
    ('{{ printf "%f|%v|%5.1f|%+v|% f" $inf $nan $ninf $nan $inf }}', "+Inf|NaN| -Inf|NaN| Inf"),
    ('{{ printf "%+f|%05.1f|% v" $nan $ninf $nan }}', "+NaN| -Inf| NaN"),
    (
        '{{ printf "%s|%v|%q|%x|%X|% x|%#x|% #x" "hi" "hi" "a\\"b" "hi" "hi" "hi" "hi" "hi" }}',
        'hi|hi|"a\\"b"|6869|6869|68 69|0x6869|0x68 0x69',
    ),
    ('{{ printf "%.3s|%5s|%-5s|%.1q|%.1x" "abcdef" "ab" "ab" "abc" "abc" }}', 'abc|   ab|ab   |"a"|61'),
    ('{{ printf "%#q|%#q|%+q" "a" "a`b" "é" }}', '`a`|"a`b"|"\\u00e9"'),
    ('{{ printf "%q" "\\x01\\u2028\\U0001F600\\t" }}', '"\\x01\\u2028\U0001f600\\t"'),
    ('{{ printf "%+q" "\\U0001F600" }}', '"\\U0001f600"'),
    ('{{ printf "%x" "" }}', ""),
    ('{{ printf "%t %5t| %v" true false false }}', "true false| false"),
    (
        '{{ printf "%T %T %T %T %T %T" 1 1.5 "a" true nil (list) }}',
        "int float64 string bool <nil> []interface {}",
    ),
    (
        '{{ printf "%v %v %s" (list 1 "a" nil) (dict "b" 1 "a" 2) (list "a" "b") }}',
        "[1 a <nil>] map[a:2 b:1] [a b]",
    ),
    ('{{ printf "%d|%s|%03d" (list 1 2) (list "a" 1) (list 1 nil) }}', "[1 2]|[a %!s(int=1)]|[001 <nil>]"),
    ('{{ printf "%d" (dict "a" 1) }}', "map[%!d(string=a):1]"),
    (
        '{{ printf "%#v|%#v|%#v|%#v" "a" (list 1 "a" nil) (dict "a" 1 "b" nil) (splitList "," "x") }}',
        '"a"|[]interface {}{1, "a", interface {}(nil)}|'
        'map[string]interface {}{"a":1, "b":interface {}(nil)}|[]string{"x"}',
    ),
    ('{{ printf "%#v|%#v|%#v|%+v" 1.5 true nil 3 }}', "1.5|true|<nil>|3"),
    ('{{ printf "%s" 3 }}', "%!s(int=3)"),
    ('{{ printf "%d" "x" }}', "%!d(string=x)"),
    ('{{ printf "%d" 1.5 }}', "%!d(float64=1.5)"),
    ('{{ printf "%t" 1 }}', "%!t(int=1)"),
    ('{{ printf "%z %p %p" true 1 (list) }}', "%!z(bool=true) %!p(int=1) %!p([]interface {}=[])"),
    ('{{ printf "%s %d" nil nil }}', "%!s(<nil>) %!d(<nil>)"),
    ('{{ printf "%v %T %5v|" nil nil nil }}', "<nil> <nil> <nil>|"),
    ('{{ printf "%d %d" 1 }}', "1 %!d(MISSING)"),
    ('{{ printf "%d" 1 2 "x" nil }}', "1%!(EXTRA int=2, string=x, <nil>)"),
    ('{{ printf "100%%" }} {{ printf "%5%" }}', "100% %"),
    ('{{ printf "%" }}', "%!(NOVERB)"),
    ('{{ printf "%-" }}', "%!(NOVERB)"),
    ('{{ printf "%*d|%-*d|%*d" 5 42 5 42 -5 42 }}', "   42|42   |42   "),
    ('{{ printf "%.*f" 2 3.14159 }}', "3.14"),
    ('{{ printf "%*d" "x" 1 }}', "%!(BADWIDTH)1"),
    ('{{ printf "%.*d" "x" 1 }}', "%!(BADPREC)1"),
    ('{{ printf "%.*d" -1 1 }}', "1"),
    ('{{ printf "%*d" }}', "%!(BADWIDTH)%!d(MISSING)"),
    ('{{ printf "%*d" 10000000 1 }}', "%!(BADWIDTH)1"),
    ('{{ printf "%99999999d" 1 }}', "%!(NOVERB)%!(EXTRA int=1)"),
    ('{{ printf "%.99999999d" }}', "%!(NOVERB)"),
    ('{{ printf "%.f" 2.5 }}', "2"),
    ('{{ printf "%[2]d %[1]d" 1 2 }}', "2 1"),
    ('{{ printf "%[2]*[1]d|" 7 3 }}', "  7|"),
    ('{{ printf "%.[2]*[1]f" 3.14159 2 }}', "3.14"),
    ('{{ printf "%[3]d" 1 }}', "%!d(BADINDEX)"),
    ('{{ printf "%[x]d" 1 }}', "%!d(BADINDEX)"),
    ('{{ printf "%[1d" 1 }}', "%!d(BADINDEX)"),
)
def test_printf(row: tuple[str, str]) -> None:
    text, expected = row
    prelude = '{{ $inf := float64 "inf" }}{{ $ninf := float64 "-inf" }}{{ $nan := float64 "NaN" }}'
    assert run(prelude + text) == expected


# --------------------------------------------------------------------------- sprig: strings


@table(
    ('{{ upper "héllo" }} {{ upper "straße" }} {{ lower "ÀB" }} {{ lower "İ" }}', "HÉLLO STRAßE àb İ"),
    (
        '{{ title "hello wOrld-foo" }}|{{ title "o\'neil_x y" }}|{{ title "élan ǆx" }}',
        "Hello WOrld-Foo|O'Neil_x Y|Élan ǅx",
    ),
    ('{{ title "a€b c\u00a0d" }}', "A€b C\u00a0D"),
    ('{{ untitle "Hello World" }}|{{ untitle "ÉLAN X" }}', "hello world|éLAN x"),
    ('{{ swapcase "Hello ǅ World" }}', "hELLO ǆ wORLD"),
    ('{{ initials "hello big  world" }}|{{ initials "élan vital" }}', "hbw|év"),
    ('{{ trim "  x  " }}|{{ trim "\\u00a0x\\t\\n" }}|{{ trim "\\x1cx" }}', "x|x|\x1cx"),
    ('{{ trimAll "$" "$5.00$" }}|{{ trimall "ab" "abxba" }}|{{ trimAll "" " x " }}', "5.00|x| x "),
    (
        '{{ trimPrefix "-" "-hello" }}|{{ trimSuffix "-" "hello-" }}|{{ trimSuffix "x" "hello" }}',
        "hello|hello|hello",
    ),
    ('{{ nospace "a b\\tc\\u00a0d" }}|{{ nospace "héllo wörld" }}', "abcd|héllowörld"),
    (
        '{{ contains "ell" "hello" }} {{ hasPrefix "he" "hello" }} {{ hasSuffix "lo" "hello" }}'
        ' {{ hasSuffix "x" "hello" }}',
        "true true true false",
    ),
    (
        '{{ replace "." "-" "a.b.c" }}|{{ "a.b" | replace "." "-" }}|{{ replace "" "-" "ab" }}',
        "a-b-c|a-b|-a-b-",
    ),
    ('{{ repeat 3 "ab" }}|{{ repeat 0 "ab" }}', "ababab|"),
    (
        '{{ substr 0 5 "hello world" }}|{{ substr -1 3 "hello" }}|{{ substr 2 -1 "hello" }}'
        '|{{ substr 2 99 "hello" }}',
        "hello|hel|llo|llo",
    ),
    (
        '{{ trunc 5 "hello world" }}|{{ trunc -5 "hello world" }}|{{ trunc 20 "hi" }}|{{ trunc -20 "hi" }}',
        "hello|world|hi|hi",
    ),
    ('{{ abbrev 5 "hello world" }}|{{ abbrev 3 "hello" }}|{{ abbrev 20 "hello" }}', "he...|hello|hello"),
    (
        '{{ abbrevboth 5 10 "1234 5678 9123" }}|{{ abbrevboth 0 3 "x" }}|{{ abbrevboth 1 6 "abcdefghij" }}',
        "...5678...|x|abcdefghij",
    ),
    (
        '{{ abbrevboth 0 10 "abcdefghijklmno" }}|{{ abbrevboth 10 10 "abcdefghijklmno" }}',
        "abcdefg...|...ijklmno",
    ),
    ('{{ abbrevboth 5 7 "abcdefghijklmno" }}|{{ abbrevboth 20 10 "" }}', "...f...|"),
    (
        '{{ quote "a" 1 nil "x\\"y" }}|{{ squote "a" 1 nil }}|{{ cat "a" nil 1 2.5 }}',
        '"a" "1" "x\\"y"|\'a\' \'1\'|a 1 2.5',
    ),
    ('{{ indent 2 "a\\nb" }}|{{ nindent 2 "a" }}', "  a\n  b|\n  a"),
    ('{{ plural "one" "many" 1 }} {{ plural "one" "many" 2 }}', "one many"),
    ('{{ sha1sum "abc" }}', "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ('{{ sha256sum "abc" }}', "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ('{{ adler32sum "abc" }}', "38600999"),
    (
        '{{ toString 1.5 }}|{{ toString nil }}|{{ toString (list 1 2) }}|{{ toString "s" }}',
        "1.5|<nil>|[1 2]|s",
    ),
    ('{{ toStrings (list 1 "a" nil) }}|{{ toStrings "x" }}|{{ toStrings nil }}', "[1 a]|[x]|[]"),
    (
        '{{ join "," (list 1 "a" nil 2.5) }}|{{ join "-" "abc" }}|{{ splitList "/" "a/b" | join "+" }}',
        "1,a,2.5|abc|a+b",
    ),
    ('{{ sortAlpha (list "b" "a" 3) }}|{{ sortAlpha "x" }}', "[3 a b]|[x]"),
    (
        '{{ splitList "," "a,b,,c" }}|{{ splitList "" "abc" }}|{{ len (splitList "," "") }}',
        "[a b  c]|[a b c]|1",
    ),
    ('{{ split "$" "foo$bar$baz" }}|{{ (split "$" "foo$bar")._1 }}', "map[_0:foo _1:bar _2:baz]|bar"),
    (
        '{{ splitn "$" 2 "foo$bar$baz" }}|{{ splitn "$" 0 "x" }}|{{ splitn "" 2 "abc" }}'
        '|{{ splitn "" 5 "ab" }}',
        "map[_0:foo _1:bar$baz]|map[]|map[_0:a _1:bc]|map[_0:a _1:b]",
    ),
    ('{{ splitn "," -1 "a,b,c" }}', "map[_0:a _1:b _2:c]"),
    ("{{ hello }}", "Hello!"),
)
def test_sprig_strings(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "snake", "kebab"),
    [
        ("FirstName", "first_name", "first-name"),
        ("HTTPServer", "http_server", "http-server"),
        ("NoHTTPS", "no_https", "no-https"),
        ("GO_PATH", "go_path", "go-path"),
        ("GO PATH", "go_path", "go-path"),
        ("GO-PATH", "go_path", "go-path"),
        ("HTTP2XX", "http_2xx", "http-2xx"),
        ("http2xx", "http_2xx", "http-2xx"),
        ("HTTP20xOK", "http_20x_ok", "http-20x-ok"),
        ("ABc", "a_bc", "a-bc"),
        ("foo bar-baz_qux", "foo_bar_baz_qux", "foo-bar-baz-qux"),
        ("AB", "ab", "ab"),
        ("A", "a", "a"),
        ("", "", ""),
    ],
)
def test_snake_and_kebab_case(text: str, snake: str, kebab: str) -> None:
    assert run("{{ snakecase .Input }}", text) == snake
    assert run("{{ kebabcase .Input }}", text) == kebab


@pytest.mark.parametrize(
    ("text", "camel"),
    [
        ("http_server", "HttpServer"),
        ("_camel_case", "_CamelCase"),
        ("a__b", "A_B"),
        ("ab_", "Ab_"),
        ("HTTPServer", "Httpserver"),
        ("a", "A"),
        ("___", "___"),
        ("", ""),
    ],
)
def test_camelcase(text: str, camel: str) -> None:
    assert run("{{ camelcase .Input }}", text) == camel


@table(
    ('{{ repeat -1 "x" }}', "error calling repeat: strings: negative Repeat count"),
    ('{{ indent -1 "x" }}', "error calling indent: strings: negative Repeat count"),
    ('{{ substr 3 1 "hello" }}', "slice bounds out of range [3:1] with length 5"),
    ('{{ substr 9 -1 "hello" }}', "slice bounds out of range [9:5] with length 5"),
    ('{{ substr -1 9 "hello" }}', "slice bounds out of range [0:9] with length 5"),
)
def test_sprig_string_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError, match="error calling") as info:
        run(text)
    assert message in str(info.value)


def test_byte_based_functions_count_utf8_bytes() -> None:
    assert run('{{ trunc 2 "éa" }}') == "é"
    assert run('{{ trunc 1 "éa" }}') == "\ufffd"
    assert run('{{ substr 1 3 "aéb" }}') == "é"
    assert run('{{ index "é" 0 }}') == "195"


# --------------------------------------------------------------------------- sprig: encodings and JSON


@table(
    ('{{ b64enc "hello" }}|{{ b64dec "aGVsbG8=" }}|{{ b64dec "aGVs\\nbG8=" }}', "aGVsbG8=|hello|hello"),
    ('{{ b64dec "aGVsbG8" }}', "illegal base64 data at input byte 4"),
    ('{{ b64dec "a!==" }}', "illegal base64 data at input byte 1"),
    ('{{ b64dec "YQ==YQ==" }}', "illegal base64 data at input byte 2"),
    ('{{ b64dec "/w==" }}', "\ufffd"),
    (
        '{{ b32enc "hi" }}|{{ b32dec "NBUQ====" }}|{{ b32dec "nbuq====" }}',
        "NBUQ====|hi|illegal base32 data at input byte 0",
    ),
    (
        '{{ toJson (dict "b" 1 "a" (list 1.5 "x<>&" nil true)) }}',
        '{"a":[1.5,"x\\u003c\\u003e\\u0026",null,true],"b":1}',
    ),
    ('{{ toRawJson (dict "b" 1 "a" (list 1.5 "x<>&" nil true)) }}', '{"a":[1.5,"x<>&",null,true],"b":1}'),
    (
        '{{ toPrettyJson (dict "a" (list 1 2) "b" (dict) "c" (list)) }}',
        '{\n  "a": [\n    1,\n    2\n  ],\n  "b": {},\n  "c": []\n}',
    ),
    (
        "{{ toJson 1e21 }} {{ toJson 1e-7 }} {{ toJson 0.000001 }} {{ toJson 1234567.0 }} {{ toJson 1e20 }}",
        "1e+21 1e-7 0.000001 1234567 100000000000000000000",
    ),
    ('{{ toJson "\\u2028\\t\\x01\\b\\f\\n\\r\\\\" }}', '"\\u2028\\t\\u0001\\b\\f\\n\\r\\\\"'),
    ("{{ toJson nil }} {{ toJson (add 1 2) }}", "null 3"),
    (
        '{{ toJson (float64 "NaN") }}|{{ toPrettyJson (float64 "inf") }}'
        '|{{ toRawJson (list (float64 "NaN")) }}',
        "||",
    ),
    (
        '{{ fromJson "{\\"a\\":[1,2]}" | toJson }}|{{ (fromJson "{\\"a\\":3}").a }}'
        '|{{ fromJson "12" | typeOf }}',
        '{"a":[1,2]}|3|float64',
    ),
    (
        '{{ fromJson "bad" }}|{{ fromJson "NaN" }}|{{ fromJson "1e400" }}|{{ fromJson "[1,]" }}',
        "<no value>|<no value>|<no value>|<no value>",
    ),
    ('{{ fromJson "[\\"\\\\ud800x\\", {\\"\\\\udc00\\": 1}, true]" }}', "[\ufffdx map[\ufffd:1] true]"),
    ('{{ fromJson "\\"\\\\u00e9\\"" }}', "é"),
    (
        '{{ mustFromJson "[1]" }} {{ mustToJson (list 1) }} {{ mustToRawJson "<" }}'
        " {{ mustToPrettyJson (list) }}",
        '[1] [1] "<" []',
    ),
)
def test_sprig_encodings(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


def test_lone_surrogates_in_data_become_replacement_characters() -> None:
    assert run("{{ toJson .Input }}", "a\ud800") == '"a\\ufffd"'
    assert run('{{ printf "%q" .Input }}', "a\ud800") == '"a\\ufffd"'


def test_json_numbers_are_float64() -> None:
    assert run("{{ toJson .Input }}", 123456789012345678) == "123456789012345680"


@table(
    ('{{ mustToJson (float64 "NaN") }}', "error calling mustToJson: json: unsupported value: NaN"),
    (
        '{{ mustToPrettyJson (float64 "inf") }}',
        "error calling mustToPrettyJson: json: unsupported value: +Inf",
    ),
    ('{{ mustToRawJson (float64 "-inf") }}', "error calling mustToRawJson: json: unsupported value: -Inf"),
    ('{{ mustFromJson "bad" }}', "error calling mustFromJson:"),
)
def test_json_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError) as info:
        run(text)
    assert message in str(info.value)


# --------------------------------------------------------------------------- sprig: defaults and flow


@table(
    (
        '{{ default "x" "" }}|{{ default "x" "y" }}|{{ default "x" 0 }}|{{ default "x" (list) }}'
        '|{{ default "x" }}',
        "x|y|x|x|x",
    ),
    ('{{ default "x" false }}|{{ default "x" (dict "a" 1) }}|{{ default "x" 0.5 }}', "x|map[a:1]|0.5"),
    (
        '{{ empty "" }} {{ empty 0 }} {{ empty (list 1) }} {{ empty nil }} {{ empty false }}'
        " {{ empty (dict) }}",
        "true true false true true true",
    ),
    ('{{ coalesce 0 "" "x" }}|{{ coalesce 0 "" }}|{{ coalesce }}', "x|<no value>|<no value>"),
    (
        '{{ all 1 "a" }} {{ all 1 "" }} {{ all }} {{ any 0 "" "x" }} {{ any 0 }} {{ any }}',
        "true false true true false false",
    ),
    ('{{ ternary "a" "b" true }}|{{ false | ternary "a" "b" }}', "a|b"),
)
def test_sprig_defaults(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


# --------------------------------------------------------------------------- sprig: conversions and math


@table(
    (
        '{{ int "42" }} {{ int "0x1F" }} {{ int "08" }} {{ int "1.0" }} {{ int "1.5" }} {{ int "1." }}',
        "42 31 0 1 0 0",
    ),
    (
        "{{ int 3.9 }} {{ int -3.9 }} {{ int true }} {{ int false }} {{ int nil }} {{ int (list) }}",
        "3 -3 1 0 0 0",
    ),
    ('{{ int "00" }} {{ int "" }} {{ int "0.0" }} {{ int "10" }}', "0 0 0 10"),
    (
        '{{ int "1_000" }} {{ int "-12" }} {{ int "99999999999999999999" }} {{ int "0b11" }}'
        ' {{ int "0o17" }}',
        "1000 -12 0 3 15",
    ),
    (
        '{{ int (float64 "NaN") }} {{ int 1e300 }} {{ int (add 2 3) }} {{ int (index "a" 0) }}',
        "-9223372036854775808 -9223372036854775808 5 97",
    ),
    ('{{ int64 "42" }} {{ int64 "42" | typeOf }}', "42 int64"),
    (
        '{{ float64 "3.5" }} {{ float64 "x" }} {{ float64 true }} {{ float64 nil }} {{ float64 3 }}'
        ' {{ float64 "1e400" }}',
        "3.5 0 1 0 3 0",
    ),
    (
        '{{ atoi "42" }} {{ atoi "x" }} {{ atoi "99999999999999999999" }} {{ atoi "-5" }} {{ atoi "+5" }}'
        ' {{ atoi "1_0" }}',
        "42 0 9223372036854775807 -5 5 0",
    ),
    ('{{ atoi "-99999999999999999999" }}', "-9223372036854775808"),
    (
        '{{ toDecimal "777" }} {{ toDecimal 17 }} {{ toDecimal "8" }}'
        ' {{ toDecimal "7777777777777777777777" }}',
        "511 15 0 0",
    ),
    (
        "{{ add 1 2 3 }} {{ add 1.9 1.9 }} {{ add }} {{ add1 5 }} {{ sub 5 3 }} {{ mul 2 3 4 }}",
        "6 2 0 6 2 24",
    ),
    ("{{ div 7 2 }} {{ div -7 2 }} {{ mod 7 3 }} {{ mod -7 3 }} {{ mod 7 -3 }}", "3 -3 1 -1 1"),
    ("{{ max 1 5 3 }} {{ min 4 2 8 }} {{ biggest 1 2 }} {{ max 7 }}", "5 2 2 7"),
    (
        "{{ add 9223372036854775807 1 }} {{ mul 4611686018427387904 4 }} {{ div -9223372036854775808 -1 }}",
        "-9223372036854775808 0 -9223372036854775808",
    ),
    (
        "{{ addf 1.1 2.2 }} {{ subf 5 1.5 }} {{ mulf 1.1 3 }} {{ divf 1 3 }} {{ divf 2 3 }}",
        "3.3 3.5 3.3 0.3333333333333333 0.6666666666666667",
    ),
    (
        "{{ add1f 1.5 }} {{ addf }} {{ divf 10 }} {{ divf 1 3000 }} {{ subf 1 }}",
        "2.5 0 10 0.0003333333333333 1",
    ),
    (
        '{{ maxf 1 2.5 }} {{ minf 1 2.5 }} {{ maxf 1 (float64 "NaN") }} {{ minf (float64 "NaN") 1 }}',
        "2.5 1 NaN NaN",
    ),
    (
        '{{ floor 1.7 }} {{ ceil 1.2 }} {{ floor "x" }} {{ ceil (float64 "inf") }} {{ floor -1.5 }}',
        "1 2 0 +Inf -2",
    ),
    (
        "{{ round 123.555555 3 }} {{ round 123.554 2 }} {{ round 1.5 0 }} {{ round 1.45 0 0.4 }}"
        " {{ round -1.5 0 }}",
        "123.556 123.55 2 2 -2",
    ),
    ('{{ round (float64 "inf") 2 }} {{ round 1 400 }}', "+Inf NaN"),
    ("{{ until 3 }} {{ until -3 }} {{ until 0 }}", "[0 1 2] [0 -1 -2] []"),
    (
        "{{ untilStep 0 10 3 }} {{ untilStep 10 0 -3 }} {{ untilStep 0 10 -1 }} {{ untilStep 0 10 0 }}"
        " {{ untilStep 10 0 1 }}",
        "[0 3 6 9] [10 7 4 1] [] [] []",
    ),
    (
        "{{ seq 3 }}|{{ seq 2 5 }}|{{ seq 5 2 }}|{{ seq 0 2 8 }}|{{ seq 8 -2 0 }}|{{ seq 8 2 0 }}"
        "|{{ seq }}|{{ seq 1 2 3 4 }}|{{ seq -3 }}",
        "1 2 3|2 3 4 5|5 4 3 2|0 2 4 6 8|8 6 4 2 0||||1 0 -1 -2 -3",
    ),
)
def test_sprig_conversions_and_math(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


@table(
    ("{{ div 1 0 }}", "error calling div: runtime error: integer divide by zero"),
    ("{{ mod 1 0 }}", "error calling mod: runtime error: integer divide by zero"),
    ("{{ divf 1 0 }}", "error calling divf: decimal division by 0"),
    ('{{ addf 1 (float64 "NaN") }}', "error calling addf: cannot create a Decimal from NaN"),
)
def test_math_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError) as info:
        run(text)
    assert message in str(info.value)


@table(
    (
        '{{ typeOf 1 }} {{ typeOf 1.5 }} {{ typeOf "a" }} {{ typeOf true }} {{ typeOf nil }}',
        "int float64 string bool <nil>",
    ),
    (
        '{{ typeOf (list) }} {{ typeOf (splitList "," "a") }} {{ typeOf (split "," "a") }}'
        " {{ typeOf (dict) }}",
        "[]interface {} []string map[string]string map[string]interface {}",
    ),
    (
        '{{ typeOf (add 1 2) }} {{ typeOf (index "a" 0) }} {{ typeOf (until 2) }} {{ typeOf .Input }}',
        "int64 uint8 []int float64",
    ),
    (
        '{{ kindOf 1 }} {{ kindOf (list) }} {{ kindOf (dict) }} {{ kindOf nil }} {{ kindOf "s" }}',
        "int slice map invalid string",
    ),
    (
        '{{ kindIs "slice" (list) }} {{ kindIs "map" 1 }} {{ typeIs "string" "a" }}'
        ' {{ typeIsLike "string" "a" }} {{ typeIsLike "int" "a" }}',
        "true false true true false",
    ),
    (
        "{{ deepEqual 1 1 }} {{ deepEqual 1 1.0 }} {{ deepEqual nil nil }} {{ deepEqual (list 1) (list 2) }}",
        "true false true false",
    ),
    (
        '{{ deepEqual (list 1 (dict "a" 2)) (list 1 (dict "a" 2)) }}'
        ' {{ deepEqual (dict "a" 1) (dict "b" 1) }} {{ deepEqual (list 1) (list 1 2) }}',
        "true false false",
    ),
)
def test_sprig_reflection(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text, 2) == expected


# --------------------------------------------------------------------------- sprig: lists and dicts


@table(
    ('{{ list 1 "a" }} {{ tuple }} {{ list }}', "[1 a] [] []"),
    (
        "{{ append (list 1) 2 }} {{ push (list) 1 }} {{ prepend (list 1) 0 }} {{ mustAppend (list 1) 2 }}",
        "[1 2] [1] [0 1] [1 2]",
    ),
    (
        "{{ first (list 1 2) }} {{ first (list) }} {{ last (list 1 2) }} {{ last (list) }}",
        "1 <no value> 2 <no value>",
    ),
    (
        "{{ rest (list 1 2 3) }} {{ rest (list) }} {{ initial (list 1 2 3) }} {{ initial (list) }}"
        " {{ reverse (list 1 2 3) }}",
        "[2 3] [] [1 2] [] [3 2 1]",
    ),
    ('{{ compact (list 0 1 "" "a" nil false) }} {{ uniq (list 1 2 1 "1" 2) }}', "[1 a] [1 2 1]"),
    ("{{ without (list 1 2 3 2) 2 }} {{ without (list 1 2 3) 1 3 }}", "[1 3] [2]"),
    ('{{ has 2 (list 1 2) }} {{ has "2" (list 1 2) }} {{ mustHas 1 (list) }}', "true false false"),
    (
        "{{ slice (list 1 2 3 4) 1 3 }} {{ slice (list 1 2 3) 1 }} {{ slice (list 1 2) }}"
        ' {{ slice (list) }} {{ slice (list 1 2) "1" }}',
        "[2 3] [2 3] [1 2] <no value> [2]",
    ),
    (
        '{{ slice (splitList "," "a,b,c") 1 | typeOf }} {{ slice (until 5) 1 3 }}'
        " {{ slice (until 5) 1 3 | typeOf }}",
        "[]string [1 2] []int",
    ),
    ("{{ concat (list 1) (list 2 3) (list) }}", "[1 2 3]"),
    ("{{ chunk 2 (list 1 2 3 4 5) }} {{ chunk 3 (list) }}", "[[1 2] [3 4] [5]] []"),
    (
        '{{ dig "a" "b" "def" (dict "a" (dict "b" 1)) }} {{ dig "a" "x" "def" (dict "a" (dict "b" 1)) }}'
        ' {{ dig "z" "d" (dict) }}',
        "1 def d",
    ),
    ('{{ dict "a" 1 "b" }} {{ dict 1 2 }} {{ dict }}', "map[a:1 b:] map[1:2] map[]"),
    ('{{ get (dict "a" 1) "a" }}|{{ get (dict) "x" }}', "1|"),
    ('{{ set (dict "a" 1) "b" 2 }} {{ $d := dict }}{{ $_ := set $d "k" "v" }}{{ $d.k }}', "map[a:1 b:2] v"),
    ('{{ unset (dict "a" 1 "b" 2) "a" }} {{ unset (dict) "x" }}', "map[b:2] map[]"),
    ('{{ hasKey (dict "a" 1) "a" }} {{ hasKey (dict) "a" }}', "true false"),
    ('{{ pluck "a" (dict "a" 1) (dict "b" 2) (dict "a" 3) }}', "[1 3]"),
    (
        '{{ keys (dict "b" 1 "a" 2) (dict "c" 3) }} {{ keys }} {{ values (dict "b" 1 "a" 2) }}',
        "[a b c] [] [2 1]",
    ),
    (
        '{{ pick (dict "a" 1 "b" 2 "c" 3) "a" "c" "z" }} {{ omit (dict "a" 1 "b" 2 "c" 3) "a" }}',
        "map[a:1 c:3] map[b:2 c:3]",
    ),
    ('{{ deepCopy (dict "a" (list 1)) }} {{ mustDeepCopy 1 }}', "map[a:[1]] 1"),
)
def test_sprig_lists_and_dicts(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


@table(
    ('{{ append "x" 1 }}', "error calling append: Cannot push on type string"),
    ("{{ prepend nil 1 }}", "error calling prepend: Cannot prepend on type invalid"),
    ("{{ first 1 }}", "Cannot find first on type int"),
    ('{{ has 1 "x" }}', "Cannot find has on type string"),
    ('{{ slice "abc" 1 }}', "list should be type of slice or array but string"),
    ("{{ slice (list 1 2) 3 }}", "slice index out of range [3:2] with length 2"),
    ("{{ concat (list 1) 2 }}", "Cannot concat type int as list"),
    ("{{ chunk 0 (list 1) }}", "chunk size must be positive, got 0"),
    ('{{ dig "a" "b" "def" (dict "a" 1) }}', "interface {} is int, not map[string]interface {}"),
    ('{{ dig "a" "def" (split "," "x") }}', "interface {} is map[string]string, not map[string]interface {}"),
    ('{{ dig 1 "def" (dict) }}', "interface {} is int, not string"),
    ("{{ deepCopy nil }}", "deepCopy: nil value"),
    (
        '{{ pluck "a" (split "," "x") }}',
        "wrong type for argument 2 of pluck: expected map[string]interface {}, got map[string]string",
    ),
)
def test_sprig_list_errors(row: tuple[str, str]) -> None:
    text, message = row
    with pytest.raises(TemplateError) as info:
        run(text)
    assert message in str(info.value)


# --------------------------------------------------------------------------- sprig: paths


@table(
    (
        '{{ base "/a/b.txt" }}|{{ base "" }}|{{ base "/" }}|{{ base "a/b/" }}|{{ osBase "x" }}',
        "b.txt|.|/|b|x",
    ),
    ('{{ dir "/a/b/c" }}|{{ dir "a" }}|{{ dir "/a" }}|{{ osDir "a/b/" }}', "/a/b|.|/|a/b"),
    (
        '{{ clean "a//b/../c/." }}|{{ clean "" }}|{{ clean "/../a" }}|{{ clean "../../a" }}'
        '|{{ osClean "a/.." }}',
        "a/c|.|/a|../../a|.",
    ),
    ('{{ ext "a/b.tar.gz" }}|{{ ext "a.b/c" }}|{{ osExt "x." }}|{{ ext "abc" }}', ".gz||.|"),
    ('{{ isAbs "/a" }} {{ isAbs "a" }} {{ osIsAbs "/" }}', "true false true"),
)
def test_sprig_paths(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


# --------------------------------------------------------------------------- sprig: regular expressions


@table(
    (
        '{{ regexMatch "^[a-z]+$" "abc" }} {{ regexMatch "[" "x" }} {{ mustRegexMatch "b" "abc" }}',
        "true false true",
    ),
    (
        '{{ regexMatch "a$" "a\\n" }} {{ regexMatch "^\\\\d$" "\u0663" }} {{ regexMatch "(?i)ABC" "xabcx" }}',
        "false false true",
    ),
    (
        '{{ regexFind "[0-9]+" "ab12cd34" }}|{{ regexFind "x" "abc" }}|{{ mustRegexFind "b+" "abbc" }}',
        "12||bb",
    ),
    (
        '{{ regexFindAll "[0-9]+" "a1b22c333" -1 }}|{{ regexFindAll "[0-9]+" "a1b22c333" 2 }}'
        '|{{ regexFindAll "[0-9]+" "a1" 0 }}',
        "[1 22 333]|[1 22]|[]",
    ),
    ('{{ regexFindAll "a*" "baaac" -1 | join "|" }}', "|aaa|"),
    ('{{ regexFindAll "|a" "a" -1 | len }}', "2"),
    (
        '{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}|{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "$1W" }}',
        "-W-xxW-|---",
    ),
    ('{{ regexReplaceAllLiteral "a(x*)b" "-ab-axxb-" "${1}" }}', "-${1}-${1}-"),
    ('{{ regexReplaceAll "a*" "baaac" "X" }}', "XbXcX"),
    (
        '{{ regexReplaceAll "(?P<first>\\\\w+) (?P<last>\\\\w+)" "John Smith" "${last}, $first" }}',
        "Smith, John",
    ),
    (
        '{{ regexReplaceAll "b" "abc" "$$" }}|{{ regexReplaceAll "b" "abc" "$" }}'
        '|{{ regexReplaceAll "b" "abc" "${x" }}',
        "a$c|a$c|a${xc",
    ),
    (
        '{{ regexReplaceAll "(b)" "abc" "[$9]" }}|{{ regexReplaceAll "(b)" "abc" "[$01]" }}'
        '|{{ regexReplaceAll "(b)|(z)" "abc" "[$2]" }}',
        "a[]c|a[]c|a[]c",
    ),
    (
        '{{ regexReplaceAll "(b)" "abc" "[${1}]" }}|{{ mustRegexReplaceAll "b" "abc" "" }}'
        '|{{ mustRegexReplaceAllLiteral "b" "abc" "$" }}',
        "a[b]c|ac|a$c",
    ),
    (
        '{{ regexSplit "z+" "pizza" -1 }}|{{ regexSplit "z+" "pizza" 1 }}|{{ regexSplit "z+" "pizza" 0 }}',
        "[pi a]|[pizza]|[]",
    ),
    (
        '{{ regexSplit "" "abc" -1 }}|{{ len (regexSplit "a" "" -1) }}'
        '|{{ regexSplit "a*" "abaabaccadaaae" 5 | join "|" }}',
        "[a b c]|1||b|b|c|cadaaae",
    ),
    ('{{ mustRegexSplit "," "a,b" -1 }}|{{ regexSplit "b" "ab" -1 | len }}', "[a b]|2"),
    ('{{ regexQuoteMeta "1.5-2.0?[x]" }}', "1\\.5-2\\.0\\?\\[x\\]"),
)
def test_sprig_regex(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text) == expected


@pytest.mark.parametrize(
    "func", ["mustRegexMatch", "regexFind", "regexReplaceAll", "regexSplit", "regexFindAll"]
)
def test_invalid_regex_is_an_error(func: str) -> None:
    extra = {"regexReplaceAll": ' "x"', "regexSplit": " -1", "regexFindAll": " -1"}.get(func, "")
    with pytest.raises(TemplateError, match=f"error calling {func}: error parsing regexp: .*`\\[`"):
        run(f'{{{{ {func} "[" "x"{extra} }}}}')


# --------------------------------------------------------------------------- the API


def test_compile_is_cached_and_templates_are_reusable() -> None:
    template = compile_template("{{ .Input.x }}!")
    assert isinstance(template, Template)
    assert compile_template("{{ .Input.x }}!") is template
    assert template.text == "{{ .Input.x }}!"
    assert template.render({"Input": {"x": 1}}) == "1!"
    assert template.render({"Input": {"x": "b"}}) == "b!"


def test_function_lists() -> None:
    required = {
        "and",
        "or",
        "not",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "len",
        "index",
        "print",
        "printf",
        "println",
        "slice",
        "html",
        "js",
        "urlquery",
        "upper",
        "lower",
        "title",
        "trim",
        "trimAll",
        "trimPrefix",
        "trimSuffix",
        "replace",
        "nospace",
        "contains",
        "hasPrefix",
        "hasSuffix",
        "b64enc",
        "b64dec",
        "default",
        "empty",
        "coalesce",
        "quote",
        "squote",
        "toJson",
        "toPrettyJson",
        "fromJson",
        "regexFind",
        "regexFindAll",
        "regexReplaceAll",
        "regexReplaceAllLiteral",
        "regexMatch",
        "regexSplit",
        "splitList",
        "split",
        "join",
        "first",
        "last",
        "rest",
        "initial",
        "list",
        "dict",
        "get",
        "hasKey",
        "keys",
        "int",
        "int64",
        "float64",
        "toString",
        "atoi",
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "max",
        "min",
        "repeat",
        "substr",
        "trunc",
        "abbrev",
        "cat",
        "indent",
        "nindent",
        "snakecase",
        "camelcase",
        "kebabcase",
        "sha256sum",
    }
    assert required <= FUNCTIONS
    assert not FUNCTIONS & set(FORBIDDEN_FUNCTIONS)
    assert {"uuidv4", "now", "date", "randAlphaNum", "env"} <= set(FORBIDDEN_FUNCTIONS)


# --------------------------------------------------------------------------- triggergate: parseKey

FASTQ_KEY = "runs/250304_A01234_0042_BHXXYYDSXC/Data/Tumor_01_S3_L002_R1_001.fastq.gz"


@table(
    ('{{ (parseKey "illumina" .Input).sample }}', "Tumor_01"),
    ('{{ (parseKey "illumina" .Input).lane }}/{{ (parseKey "illumina" .Input).read }}', "2/R1"),
    ('{{ (parseKey "illumina" .Input).run }}', "250304_A01234_0042_BHXXYYDSXC"),
    ('{{ $f := parseKey "illumina" .Input }}{{ $f.sample }}_L{{ $f.lane }}', "Tumor_01_L2"),
    ('{{ (parseKey "illumina" "notes.txt").sample }}', "<no value>"),  # not a file it knows: empty map
    ('{{ len (parseKey "illumina" "notes.txt") }}', "0"),
    ('{{ (parseKey "illumina" "notes.txt").sample | default "none" }}', "none"),
    ('{{ (parseKey "mgi" "V300046476_L01_59_2.fq.gz").read }}', "R2"),
    (
        '{{ (parseKey "ont" "fastq_pass/barcode07/FAV1_pass_barcode07_a1b2c3d4_e5f6a7b8_0.fastq.gz")'
        ".barcode }}",
        "barcode07",
    ),
    ('{{ hasKey (parseKey "illumina" .Input) "lane" }}', "true"),
)
def test_parse_key_gives_the_key_parsers_fields(row: tuple[str, str]) -> None:
    text, expected = row
    assert run(text, FASTQ_KEY) == expected


def test_parse_key_names_the_known_parsers() -> None:
    assert "parseKey" in FUNCTIONS
    with pytest.raises(TemplateError, match='unknown key parser "pacbio"; known parsers: illumina, mgi, ont'):
        run('{{ parseKey "pacbio" .Input }}', FASTQ_KEY)
    with pytest.raises(TemplateError, match="wrong number of args for parseKey: want 2 got 1"):
        compile_template("{{ parseKey .Input }}")


def test_parse_key_in_a_data_filter_and_a_parameter() -> None:
    from sensors.event import Event
    from sensors.filters import compile_filters
    from sensors.params import resolve_value
    from sensors.spec import EventDependency, TriggerParameterSource

    dep = EventDependency.model_validate(
        {
            "name": "r1",
            "eventSourceName": "uploads",
            "eventName": "fastq",
            "filters": {
                "data": [
                    {
                        "path": "key",
                        "type": "string",
                        "value": ["R1"],
                        "template": '{{ (parseKey "illumina" .Input).read }}',
                    }
                ]
            },
        }
    )

    def upload(key: str) -> Event:
        from datetime import UTC, datetime

        return Event(
            id=key, source="uploads", subject="fastq", type="s3", time=datetime.now(UTC), data={"key": key}
        )

    compiled = compile_filters(dep)
    assert compiled.evaluate(upload(FASTQ_KEY)).passed
    assert not compiled.evaluate(upload(FASTQ_KEY.replace("_R1_", "_R2_"))).passed
    src = TriggerParameterSource.model_validate(
        {"dependencyName": "r1", "dataTemplate": '{{ (parseKey "illumina" .Input.key).sample }}'}
    )
    resolved = resolve_value(src, {"r1": upload(FASTQ_KEY)})
    assert resolved is not None and resolved.text == "Tumor_01"
