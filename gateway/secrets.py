"""Secrets read from a directory laid out like mounted Kubernetes Secrets, and kept out of logs.

An Argo ``SecretKeySelector`` ``{name: N, key: K}`` is read from ``<secrets-dir>/N/K`` (the layout
``kubectl`` produces when a Secret is mounted as a volume, so a Helm chart can mount each Secret at
``<secrets-dir>/<name>``). One trailing newline is stripped, so ``echo token > file`` works.

- :class:`SecretValue` wraps a value so that ``repr``/``str``/f-strings print ``***``; ``reveal()``
  returns it, ``matches()`` compares in constant time.
- :class:`SecretStore` reads and caches values and remembers every value it handed out, so that
- :class:`RedactingFilter` can replace each of them by ``***`` in log records.
"""

from __future__ import annotations

import hmac
import logging
import shlex
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from gateway.errors import ConfigError
from sensors.spec import SecretKeySelector

REDACTED = "***"


class SecretValue:
    """A secret string that does not print itself. ``reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; use it at the point where it is sent, never to build log messages."""
        return self._value

    def matches(self, candidate: str | bytes) -> bool:
        """Whether ``candidate`` equals the secret, in time independent of where they differ."""
        given = candidate.encode("utf-8") if isinstance(candidate, str) else candidate
        return hmac.compare_digest(given, self._value.encode("utf-8"))

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__


class SecretNotFound(ConfigError):
    """A referenced secret file does not exist; the message says which file and how to create it."""

    def __init__(self, path: Path, selector: SecretKeySelector) -> None:
        self.path = path
        self.selector = selector
        quoted_dir = shlex.quote(str(path.parent))
        quoted = shlex.quote(str(path))
        super().__init__(
            [
                f"secret '{selector.name}' key '{selector.key}' not found: no file {path}; "
                f"create it with: mkdir -p {quoted_dir} && printf '%s' \"$VALUE\" > {quoted}"
            ]
        )


def _check_part(what: str, value: str) -> None:
    if not value or value in (".", "..") or any(c in value for c in "/\\\x00"):
        raise ConfigError(
            [
                f"secret {what} {value!r} is not a plain name: it must be non-empty, not '.' or '..', "
                "and hold no '/', '\\' or NUL"
            ]
        )


class SecretStore:
    """Reads ``<secrets_dir>/<name>/<key>`` for a selector; values are cached after the first read.

    ``get`` raises :class:`SecretNotFound` for a missing file and :class:`ConfigError` for a file that
    cannot be read or a name that would leave ``secrets_dir``. Thread-safe.
    """

    def __init__(self, secrets_dir: Path) -> None:
        self.secrets_dir = Path(secrets_dir)
        self._cache: dict[tuple[str, str], SecretValue] = {}
        self._lock = threading.Lock()

    def path_for(self, selector: SecretKeySelector) -> Path:
        """The file that holds ``selector``'s value; rejects names that would leave the directory."""
        _check_part("name", selector.name)
        _check_part("key", selector.key)
        return self.secrets_dir / selector.name / selector.key

    def get(self, selector: SecretKeySelector) -> SecretValue:
        """The value of ``selector``, read once and then served from the cache."""
        cache_key = (selector.name, selector.key)
        with self._lock:
            cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        path = self.path_for(selector)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise SecretNotFound(path, selector) from exc
        except IsADirectoryError as exc:
            raise ConfigError(
                [
                    f"secret '{selector.name}' key '{selector.key}': {path} is a directory; "
                    "it must be a file holding the value"
                ]
            ) from exc
        except OSError as exc:
            raise ConfigError(
                [f"secret '{selector.name}' key '{selector.key}': cannot read {path}: {exc.strerror}"]
            ) from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                [f"secret '{selector.name}' key '{selector.key}': {path} is not UTF-8 text"]
            ) from exc
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        value = SecretValue(text)
        with self._lock:
            return self._cache.setdefault(cache_key, value)

    def lookup(self, selector: SecretKeySelector) -> SecretValue | None:
        """Like :meth:`get`, but ``None`` when the file is missing and the selector is ``optional``."""
        try:
            return self.get(selector)
        except SecretNotFound:
            if selector.optional:
                return None
            raise

    def known_values(self) -> list[str]:
        """Every non-empty value read so far, longest first (so redaction replaces whole values)."""
        with self._lock:
            values = {v.reveal() for v in self._cache.values()}
        return sorted((v for v in values if v), key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """Replaces every known secret value in a record's message, args, exception and stack text.

    Attach it to *handlers* (a logger's own filters do not see records of its child loggers).
    ``source`` is a :class:`SecretStore` or any callable returning the values; it is asked on every
    record, so secrets read after the filter was installed are redacted too. Never drops a record.
    """

    def __init__(self, source: SecretStore | Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._values = source.known_values if isinstance(source, SecretStore) else source

    def redact(self, text: str) -> str:
        for value in sorted((v for v in self._values() if v), key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as logging does
            return True
        values = [v for v in self._values() if v]
        if not values:
            return True
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True
