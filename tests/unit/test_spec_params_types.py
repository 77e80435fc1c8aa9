"""Strings from --param and ${env.*} fill integer, number and boolean config keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshline.config import doc, parse_config
from meshline.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class _Config:
    port: int = doc("a port", 8080)
    ratio: float = doc("a ratio", 1.0)
    enabled: bool = doc("on or off", False)
    limit: int | None = doc("optional", None)


def test_strings_are_read_as_the_field_type():
    c = parse_config(_Config, {"port": "9000", "ratio": "0.25", "enabled": "TRUE", "limit": " 7 "})
    assert (c.port, c.ratio, c.enabled, c.limit) == (9000, 0.25, True, 7)


def test_text_that_is_not_a_number_is_still_an_error():
    with pytest.raises(ConfigError, match="port: expected an integer, got 'ninety'"):
        parse_config(_Config, {"port": "ninety"})
    with pytest.raises(ConfigError, match="enabled: expected true or false"):
        parse_config(_Config, {"enabled": "yes please"})
