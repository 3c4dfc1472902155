"""Client TLS for the broker sources, from Argo's ``TLSConfig`` and the secrets directory.

As in Argo: ``insecureSkipVerify`` gives a context that checks nothing and presents no client
certificate; otherwise ``caCertSecret`` (a PEM file) replaces the system CAs, and
``clientCertSecret``/``clientKeySecret`` (PEM files) are presented to the broker. ``enabled: true``
alone means TLS with the system CAs.
"""

from __future__ import annotations

import ssl

from gateway.errors import ConfigError
from gateway.secrets import SecretNotFound, SecretStore
from sensors.spec import SecretKeySelector, TLSConfig


def _file(secrets: SecretStore | None, selector: SecretKeySelector, where: str, field: str) -> str:
    if secrets is None:
        raise ConfigError([f"{where}: tls.{field} is set but no secrets directory is configured"])
    path = secrets.path_for(selector)
    if not path.is_file():
        raise SecretNotFound(path, selector)
    return str(path)


def client_ssl_context(tls: TLSConfig, secrets: SecretStore | None, where: str) -> ssl.SSLContext:
    """The SSL context of a client; ``where`` (e.g. ``kafka es/event``) prefixes every error."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        if tls.ca_cert_secret is not None:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=_file(secrets, tls.ca_cert_secret, where, "caCertSecret")
            )
        if tls.client_cert_secret is not None and tls.client_key_secret is not None:
            context.load_cert_chain(
                _file(secrets, tls.client_cert_secret, where, "clientCertSecret"),
                _file(secrets, tls.client_key_secret, where, "clientKeySecret"),
            )
    except ssl.SSLError as exc:
        raise ConfigError(
            [f"{where}: the TLS certificates cannot be loaded ({exc}); the secrets must hold PEM files"]
        ) from exc
    return context
