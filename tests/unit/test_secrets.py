"""SecretValue, SecretStore and RedactingFilter: values are read from files and never printed."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.secrets import RedactingFilter, SecretNotFound, SecretStore, SecretValue
from sensors.spec import SecretKeySelector


def _write_secret(root: Path, name: str, key: str, content: str | bytes) -> Path:
    path = root / name / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def _selector(name: str, key: str, optional: bool | None = None) -> SecretKeySelector:
    return SecretKeySelector(name=name, key=key, optional=optional)


# --------------------------------------------------------------------------- SecretValue


def test_secret_value_never_prints_itself() -> None:
    value = SecretValue("hunter2")
    assert repr(value) == "***"
    assert str(value) == "***"
    assert f"{value} {value!r} {[value]}" == "*** *** [***]"
    assert "%s" % value == "***"  # noqa: UP031 - old-style formatting is what logging uses
    assert value.reveal() == "hunter2"


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("hunter2", True),
        (b"hunter2", True),
        ("hunter3", False),
        ("", False),
        ("hunter22", False),
        ("hünter2", False),
    ],
)
def test_secret_value_matches_in_constant_time(candidate: str | bytes, expected: bool) -> None:
    assert SecretValue("hunter2").matches(candidate) is expected


def test_secret_value_matches_non_ascii_values() -> None:
    assert SecretValue("pässwörd").matches("pässwörd")
    assert SecretValue("pässwörd").matches("pässwörd".encode())


# --------------------------------------------------------------------------- SecretStore


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("token", "token"),
        ("token\n", "token"),
        ("token\r\n", "token"),
        ("token\n\n", "token\n"),  # only one trailing newline is the file's; the rest is the value
        (" spaced \n", " spaced "),
        ("multi\nline\n", "multi\nline"),
    ],
)
def test_get_reads_file_and_strips_one_trailing_newline(tmp_path: Path, content: str, expected: str) -> None:
    _write_secret(tmp_path, "auth", "token", content)
    assert SecretStore(tmp_path).get(_selector("auth", "token")).reveal() == expected


def test_get_caches_the_first_read(tmp_path: Path) -> None:
    path = _write_secret(tmp_path, "auth", "token", "first\n")
    store = SecretStore(tmp_path)
    first = store.get(_selector("auth", "token"))
    path.write_text("second\n")
    assert store.get(_selector("auth", "token")) is first
    assert first.reveal() == "first"
    assert SecretStore(tmp_path).get(_selector("auth", "token")).reveal() == "second"


def test_missing_secret_names_the_path_and_how_to_create_it(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    with pytest.raises(SecretNotFound) as info:
        store.get(_selector("webhook-auth", "token"))
    assert isinstance(info.value, ConfigError)
    expected_path = tmp_path / "secrets" / "webhook-auth" / "token"
    assert info.value.path == expected_path
    [message] = info.value.problems
    assert str(expected_path) in message
    assert "'webhook-auth'" in message and "'token'" in message
    assert "mkdir -p" in message and "printf" in message


def test_lookup_returns_none_only_for_optional_missing_secrets(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    assert store.lookup(_selector("absent", "key", optional=True)) is None
    with pytest.raises(SecretNotFound):
        store.lookup(_selector("absent", "key"))
    _write_secret(tmp_path, "present", "key", "v")
    value = store.lookup(_selector("present", "key", optional=True))
    assert value is not None and value.reveal() == "v"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("..", "passwd"),
        (".", "key"),
        ("ok", ".."),
        ("a\\..\\b", "key"),
        ("ok", "a/b"),
        ("", "key"),
        ("ok", "nul\x00"),
    ],
)
def test_path_traversal_is_rejected(tmp_path: Path, name: str, key: str) -> None:
    inner = tmp_path / "secrets"
    inner.mkdir()
    (tmp_path / "passwd").write_text("root")  # what '../passwd' would reach
    # model_construct skips the model's own checks: the store must not rely on them.
    selector = SecretKeySelector.model_construct(name=name, key=key, optional=None)
    with pytest.raises(ConfigError) as info:
        SecretStore(inner).get(selector)
    assert not isinstance(info.value, SecretNotFound)
    assert "not a plain name" in info.value.problems[0]


def test_a_directory_or_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "auth" / "token").mkdir(parents=True)
    with pytest.raises(ConfigError, match="is a directory"):
        SecretStore(tmp_path).get(_selector("auth", "token"))
    _write_secret(tmp_path, "bin", "key", b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        SecretStore(tmp_path).get(_selector("bin", "key"))


def test_known_values_lists_non_empty_values_longest_first(tmp_path: Path) -> None:
    _write_secret(tmp_path, "a", "short", "abc\n")
    _write_secret(tmp_path, "a", "long", "abcdef\n")
    _write_secret(tmp_path, "a", "empty", "\n")
    store = SecretStore(tmp_path)
    assert store.known_values() == []
    for key in ("short", "long", "empty"):
        store.get(_selector("a", key))
    assert store.known_values() == ["abcdef", "abc"]


# --------------------------------------------------------------------------- RedactingFilter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, logging.Handler, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, handler, stream
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_filter_redacts_message_and_args(
    tmp_path: Path, captured: tuple[logging.Logger, logging.Handler, io.StringIO]
) -> None:
    logger, handler, stream = captured
    _write_secret(tmp_path, "auth", "token", "S3cr3t-T0ken\n")
    store = SecretStore(tmp_path)
    token = store.get(_selector("auth", "token"))
    handler.addFilter(RedactingFilter(store))

    logger.info("sending Authorization: Bearer %s to %s", token.reveal(), "http://x")
    logger.warning("inline S3cr3t-T0ken in the format string")
    logger.info("mapping args %(tok)s", {"tok": token.reveal()})

    out = stream.getvalue()
    assert "S3cr3t-T0ken" not in out
    assert "INFO sending Authorization: Bearer *** to http://x" in out
    assert "WARNING inline *** in the format string" in out
    assert "INFO mapping args ***" in out


def test_filter_redacts_exception_text_and_sees_secrets_read_later(
    tmp_path: Path, captured: tuple[logging.Logger, logging.Handler, io.StringIO]
) -> None:
    logger, handler, stream = captured
    store = SecretStore(tmp_path)
    handler.addFilter(RedactingFilter(store))  # installed before any secret is read
    _write_secret(tmp_path, "db", "password", "pa55w0rd")
    password = store.get(_selector("db", "password")).reveal()
    try:
        raise RuntimeError(f"login failed with {password}")
    except RuntimeError:
        logger.exception("connect failed")
    out = stream.getvalue()
    assert "RuntimeError: login failed with ***" in out
    assert "pa55w0rd" not in out


def test_filter_prefers_the_longest_secret_and_leaves_other_records_alone(
    captured: tuple[logging.Logger, logging.Handler, io.StringIO],
) -> None:
    logger, handler, stream = captured
    handler.addFilter(RedactingFilter(lambda: ["abc", "abcdef", ""]))
    logger.info("value=%s", "abcdef")
    logger.info("nothing secret %d", 42)
    assert stream.getvalue().splitlines() == ["INFO value=***", "INFO nothing secret 42"]


def test_filter_keeps_args_when_there_are_no_secrets() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
    assert RedactingFilter(lambda: []).filter(record) is True
    assert record.msg == "a %s" and record.args == ("b",)


def test_filter_passes_records_with_broken_format_strings() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s %s", ("only-one",), None)
    assert RedactingFilter(lambda: ["only-one"]).filter(record) is True
