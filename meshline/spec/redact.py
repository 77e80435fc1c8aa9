"""Keeping secrets out of text: errors, logs, graph labels and printed configs.

What is secret is declared once, on config fields (:mod:`meshline.config`'s
``secret`` marks), and by ``secret: true`` parameters; interpolation turns those
values into :class:`meshline.secrets.Secret` strings, whose ``repr`` is masked.

A :class:`Redactor` knows the secret values of one integration and replaces
them, and the password of every ``scheme://user:password@`` URL, with ``***``
in any text. :func:`redact_config` masks a config mapping by its component's
field marks (for configs built by hand, whose values are plain strings).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from meshline.config import masked
from meshline.secrets import MASK, Secret, forms, mask_url

__all__ = ["MASK", "Redactor", "redact_config"]


class Redactor:
    """Replaces known secret values and URL passwords with ``***``; its ``repr`` never shows them."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[Any] = ()):
        found: set[str] = set()
        for secret in secrets:
            if secret is None or isinstance(secret, bool):
                continue
            text = str(secret)
            if text.strip():
                found |= forms(text)
        self._secrets: tuple[str, ...] = tuple(sorted(found, key=lambda s: (-len(s), s)))

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def merged(self, other: Redactor) -> Redactor:
        """A redactor that knows the secrets of both."""
        return Redactor(self._secrets + other._secrets)

    def redact(self, text: str) -> str:
        """``text`` with every known secret value and every URL password replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_url(text) if "@" in text else text

    def redact_value(self, value: Any) -> Any:
        """A copy of a JSON-like value with secrets masked in every string."""
        if isinstance(value, Secret):
            return value.shown()
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.redact_value(v) for v in value)
        return value

    def redact_config(self, config: Any, config_class: type | None = None) -> Any:
        """A copy of ``config`` with the values of secret-marked fields and known secret values masked."""
        return redact_config(config, config_class, self)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Redactor) and self._secrets == other._secrets

    def __hash__(self) -> int:
        return hash(self._secrets)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secret(s)>)"


def redact_config(config: Any, config_class: type | None = None, redactor: Redactor | None = None) -> Any:
    """A copy of a config mapping with secrets masked.

    With ``config_class`` (the component's config dataclass), its field marks decide
    (:func:`meshline.config.masked`): the value of every field marked ``secret``
    becomes ``***`` and URLs in ``secret="url"`` fields lose their password;
    everywhere, :class:`~meshline.secrets.Secret` values show masked and the
    ``redactor``'s known values and URL passwords are masked.
    """
    redactor = redactor or Redactor()
    return redactor.redact_value(masked(config_class, config) if config_class is not None else config)
