"""google.storage target: config checks and error classification."""

from __future__ import annotations

import pytest
import requests
from google.api_core import exceptions as gexc

from meshline.config import parse_config
from meshline.connectors.delivery import PermanentError, TransientError
from meshline.connectors.gcs.client import classify
from meshline.connectors.gcs.target import GcsTargetConfig
from meshline.errors import ConfigError


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (gexc.TooManyRequests("slow down"), TransientError),
        (gexc.ServiceUnavailable("later"), TransientError),
        (gexc.InternalServerError("oops"), TransientError),
        (gexc.GatewayTimeout("late"), TransientError),
        (requests.ConnectionError("refused"), TransientError),
        (requests.Timeout("timed out"), TransientError),
        (gexc.NotFound("no such bucket"), PermanentError),
        (gexc.Forbidden("denied"), PermanentError),
        (gexc.BadRequest("bad name"), PermanentError),
    ],
)
def test_errors_are_classified(error, kind):
    out = classify(error, "bucket 'b'")
    assert isinstance(out, kind) and str(out).startswith("bucket 'b': ")


def test_config_checks_name_the_key():
    c = parse_config(GcsTargetConfig, {"bucket": "b", "format": "parquet", "window": "30s"}, where="target t")
    assert c.window == 30.0
    for config, message in [
        ({"bucket": "gs://b/x"}, "bucket: expected a bucket name"),
        ({"bucket": "b", "max_events": 0}, "max_events: must be >= 1"),
        ({"bucket": "b", "format": "csv"}, "format"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(GcsTargetConfig, config, where="target t")
