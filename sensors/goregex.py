r"""Go (RE2) regular expressions as Python ones.

Argo Events users write Go regular expressions in data filters, expressions (``=~``) and sprig
template functions. Python's ``re`` is close; this module translates the differences that matter
(``$`` means end of text, ``\z``, ``\Q...\E``, POSIX classes such as ``[[:alpha:]]``, ``(?<name>``).
"""

from __future__ import annotations

import re

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\x0b\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_MULTILINE_FLAG = re.compile(r"\(\?[a-zA-Z]*m[a-zA-Z]*[:)]")


def _translate_class(pattern: str, start: int) -> tuple[str, int]:
    """A Go character class at ``pattern[start] == '['``: its Python text and the index after it."""
    out = ["["]
    i = start + 1
    if pattern[i : i + 1] == "^":
        out.append("^")
        i += 1
    if pattern[i : i + 1] == "]":
        out.append("\\]")
        i += 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]":
            out.append("]")
            return "".join(out), i + 1
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end >= 0 else ""
            if name in _POSIX_CLASSES:
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            if end >= 0:  # negated ([:^alpha:]) or unknown
                raise re.error(f"unsupported character class [:{name}:]")
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append("\\" + ch if ch in "[&~|" else ch)
        i += 1
    return "".join(out), i  # unterminated: Python reports it


def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go (RE2) regular expression as a Python one; raises :class:`re.error`."""
    out: list[str] = []
    multiline = _MULTILINE_FLAG.search(pattern) is not None
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = len(pattern) if end < 0 else end + 2
                continue
            out.append("\\Z" if nxt == "z" else pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            text, i = _translate_class(pattern, i)
            out.append(text)
            continue
        if ch == "$" and not multiline:
            out.append("\\Z")
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        else:
            out.append(ch)
        i += 1
    return re.compile("".join(out), re.ASCII)
