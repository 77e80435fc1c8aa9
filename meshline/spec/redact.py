"""Keeping secrets out of text: errors, logs, graph labels and printed configs.

A :class:`Redactor` knows the secret values of one integration — the values of
``secret: true`` parameters and every ``${params.…}``/``${env.…}`` value that lands
in a config key whose name looks secret — and replaces them with ``***`` in any
text. :func:`redact_config` masks a config mapping by key name as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "Redactor", "is_secret_key", "redact_config"]

MASK = "***"

_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "passphrase",
    "connection_string",
    "connectionstring",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "access_key",
    "account_key",
    "sas_key",
    "shared_access_key",
    "signature",
)
_SECRET_NAMES = frozenset({"key", "sas", "authorization", "master_key", "encryption_key"})


def is_secret_key(name: object) -> bool:
    """Whether a config key's name says its value is a credential (``password``, ``api_key``, ``key``…)."""
    if not isinstance(name, str):
        return False
    lowered = name.lower().replace("-", "_")
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


class Redactor:
    """Replaces known secret values with ``***``; its ``repr`` never shows them."""

    __slots__ = ("_keys", "_secrets")

    def __init__(self, secrets: Iterable[Any] = (), *, secret_keys: Iterable[str] = ()):
        found: set[str] = set()
        for secret in secrets:
            if secret is None or isinstance(secret, bool):
                continue
            text = str(secret)
            if not text.strip():
                continue
            found.add(text)
            escaped = json.dumps(text)[1:-1]  # as it appears inside JSON text
            if escaped != text:
                found.add(escaped)
        self._secrets: tuple[str, ...] = tuple(sorted(found, key=lambda s: (-len(s), s)))
        self._keys = frozenset(k.lower() for k in secret_keys)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def merged(self, other: Redactor) -> Redactor:
        """A redactor that knows the secrets of both."""
        return Redactor(self._secrets + other._secrets, secret_keys=self._keys | other._keys)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_value(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets masked in every string."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_value(v) for v in value)
        return value

    def redact_config(self, config: Any) -> Any:
        """A copy of ``config`` with secret-looking keys' values and known secret values masked."""
        return redact_config(config, self)

    def is_secret_key(self, name: object) -> bool:
        return is_secret_key(name) or (isinstance(name, str) and name.lower() in self._keys)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Redactor) and (self._secrets, self._keys) == (other._secrets, other._keys)

    def __hash__(self) -> int:
        return hash((self._secrets, self._keys))

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secret(s)>)"


def redact_config(config: Any, redactor: Redactor | None = None) -> Any:
    """A copy of a config mapping with secrets masked.

    The value of every key whose name looks secret (``password``, ``token``,
    ``api_key``, ``connection_string``, ``key``…) becomes ``***``, whatever it is;
    every other string has the ``redactor``'s known secret values masked.
    """
    if redactor is None:
        redactor = Redactor()
    if isinstance(config, dict):
        out: dict[Any, Any] = {}
        for key, value in config.items():
            if redactor.is_secret_key(key) and value not in (None, "", [], {}):
                out[key] = MASK
            else:
                out[key] = redact_config(value, redactor)
        return out
    if isinstance(config, list):
        return [redact_config(v, redactor) for v in config]
    return redactor.redact_value(config)
