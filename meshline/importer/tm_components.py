"""TriggerMesh/Knative target and transformation kinds → Meshline targets and steps.

Each converter reads its manifest through :class:`~meshline.importer.manifest.Fields`
and returns ``(meshline type, config)``; what it does not read is reported by the
importer as not carried. It raises :class:`Unsupported` for a manifest it cannot
convert at all. Secrets become secret parameters (``Fields.secret``), never literals.
Sources are in :mod:`meshline.importer.tm_sources`.
"""

from __future__ import annotations

from typing import Any

from meshline.config import is_secret_key
from meshline.importer.manifest import Fields, Unsupported, ref_name
from meshline.importer.tm_common import (
    ADC,
    KERBEROS,
    Converter,
    aws_auth,
    basic_auth,
    common,
    google_auth,
    kafka_login,
    kafka_tls,
    parse_arn,
    sqs_url,
)

__all__ = ["STEPS", "TARGETS"]

# --------------------------------------------------------------------------- targets

_PAYLOAD_POLICY = "Meshline targets send no response events; failed deliveries go to the dead-letter target"


def _aws_s3_target(f: Fields) -> tuple[str, dict[str, Any]]:
    p = parse_arn(f.get("arn"), "s3")
    config: dict[str, Any] = {"bucket": p[5].split("/", 1)[0], "format": "jsonl"}
    if "/" in p[5]:
        config["prefix"] = p[5].split("/", 1)[1]
    if p[3]:
        config["region"] = p[3]
    f.ctx.note("AWSS3Target wrote one object per event; Meshline writes batched jsonl objects per window")
    if f.flag("discardCloudEventContext"):
        f.drop("discardCloudEventContext", "the aws.s3 target writes whole events (jsonl)")
    aws_auth(f, config)
    common(f)
    return "aws.s3", config


def _aws_sqs_target(f: Fields) -> tuple[str, dict[str, Any]]:
    url, region = sqs_url(f.get("arn"))
    config: dict[str, Any] = {"queue_url": url, "region": region}
    # TriggerMesh sent the whole event as the body unless told to discard its context.
    config["mode"] = "binary" if f.flag("discardCloudEventContext") else "structured"
    f.drop(
        "messageGroupId",
        "the aws.sqs target takes the group id from an event attribute (message_group_id); "
        "set one with a mapping step",
    )
    aws_auth(f, config)
    common(f)
    return "aws.sqs", config


def _elasticsearch_target(f: Fields) -> tuple[str, dict[str, Any]]:
    hosts = f.strings("connection.addresses")
    index = f.text("indexName")
    if not hosts or not index:
        raise Unsupported("spec.connection.addresses and spec.indexName are required")
    config: dict[str, Any] = {"hosts": hosts, "index": index}
    # TriggerMesh indexed the whole event unless told to discard its context.
    config["document"] = "data" if f.flag("discardCloudEventContext") else "event"
    user = f.text("connection.username")
    if user:
        config["username"] = user
        password = f.secret("connection.password", "Elasticsearch password", "password")
        if password:
            config["password"] = password
    api_key = f.secret("connection.apiKey", "Elasticsearch API key", "api_key")
    if api_key:
        config["api_key"] = api_key
    hint = "FILE (a PEM file holding it)"
    ca = f.secret("connection.caCert", "Elasticsearch CA certificate", "ca_certs", hint=hint, secret=False)
    if ca:
        config["ca_certs"] = ca
    if f.flag("connection.skipVerify"):
        config["verify"] = False
        f.ctx.note("spec.connection.skipVerify: the server's certificate is not verified (verify: false)")
    f.drop("eventOptions.payloadPolicy", _PAYLOAD_POLICY)
    common(f)
    return "elasticsearch", config


def _kafka_target(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"bootstrap_servers": f.strings("bootstrapServers")}
    auth_tls = f.flag("auth.tlsEnable") or f.has("auth.tls")
    mech = f.text("auth.securityMechanism")
    kafka_login(f, config, f.flag("auth.saslEnable"), mech, auth_tls, "auth.securityMechanism")
    kafka_tls(f, config, "auth.tls.ca", "auth.tls.clientCert", "auth.tls.clientKey", "auth.tls.skipVerify")
    f.drop("auth.kerberos", KERBEROS)
    topic = f.text("topic")
    if not topic or not config["bootstrap_servers"]:
        raise Unsupported("spec.bootstrapServers and spec.topic are required")
    config["topic"] = topic
    # TriggerMesh wrote the whole event as the record value unless told to discard its context.
    config["mode"] = "binary" if f.flag("discardCloudEventContext") else "structured"
    for path in ("topicReplicationFactor", "topicPartitions"):
        f.drop(path, "Meshline does not create topics")
    common(f)
    return "kafka", config


def _gcs_target(f: Fields) -> tuple[str, dict[str, Any]]:
    bucket = f.text("bucketName")
    if not bucket:
        raise Unsupported("spec.bucketName is required")
    f.drop("credentialsJson", ADC)
    google_auth(f)
    if f.flag("discardCloudEventContext"):
        f.drop("discardCloudEventContext", "the google.storage target writes whole events (jsonl)")
    f.drop("eventOptions.payloadPolicy", _PAYLOAD_POLICY)
    common(f)
    return "google.storage", {"bucket": bucket, "format": "jsonl"}


def _datalake_target(f: Fields) -> tuple[str, dict[str, Any]]:
    account = f.text("accountName") or f.text("storageAccount")
    container = f.text("containerName") or f.text("fileSystem") or f.text("container")
    if not account or not container:
        raise Unsupported("spec: the storage account and container/file system are required")
    common(f)
    return "azure.datalake", {
        "account_url": f"https://{account}.dfs.core.windows.net",
        "container": container,
    }


def _cloudevents_target(f: Fields) -> tuple[str, dict[str, Any]]:
    url = f.text("endpoint")
    if not url:
        raise Unsupported("spec.endpoint is required")
    path = f.text("path")
    if path:
        url = url.rstrip("/") + "/" + path.lstrip("/")
    config: dict[str, Any] = {"url": url}
    basic_auth(f, config, "HTTP", "credentials.basicAuth.username", "credentials.basicAuth.password")
    # Older shapes some manifests use.
    basic_auth(f, config, "HTTP", "credentials.basicAuthUsername", "credentials.basicAuthPassword")
    basic_auth(f, config, "HTTP", "basicAuthUsername", "basicAuthPassword")
    common(f)
    return "http", config


def _http_target(f: Fields) -> tuple[str, dict[str, Any]]:
    url = f.text("endpoint")
    if not url:
        raise Unsupported("spec.endpoint is required")
    config: dict[str, Any] = {"url": url}
    method = (f.text("method") or "POST").upper()
    if method not in ("POST", "PUT"):
        raise Unsupported(f"spec.method {method}: the http target sends POST or PUT")
    config["method"] = method
    headers = f.peek("headers")
    if isinstance(headers, dict) and headers:
        out: dict[str, Any] = {}
        for name in headers:
            if is_secret_key(str(name)):  # the http target's headers mask the same ones
                out[str(name)] = f.secret(f"headers.{name}", f"HTTP header {name}", f"header_{name}")
            else:
                out[str(name)] = str(f.get(f"headers.{name}"))
        config["headers"] = out
    basic_auth(f, config, "HTTP", "basicAuthUsername", "basicAuthPassword")
    if f.flag("skipVerify"):
        config["verify_tls"] = False
        f.ctx.note("spec.skipVerify: the server's certificate is not verified (verify_tls: false)")
    f.drop("caCertificate", "the http target trusts the system's CAs only")
    for path in ("oauthClientID", "oauthClientSecret", "oauthTokenURL", "oauthScopes"):
        f.drop(path, "the http target has no OAuth client credentials flow (use a token parameter)")
    f.drop(
        "response",
        "HTTPTarget turned replies into events; Meshline's http target only delivers (use an http step)",
    )
    common(f)
    return "http", config


def _knative_service_target(f: Fields) -> tuple[str, dict[str, Any]]:
    ns = str(f.meta.get("namespace") or "default")
    default = f"http://{f.name}.{ns}.svc.cluster.local/"
    url = f.ctx.param(f"{f.name}_url", f"URL of the service {f.name}", default=default)
    f.get("template")  # the container is not deployed: Meshline posts to the running service
    f.ctx.note(f"Meshline posts events to the running service (parameter {ref_name(url)}, default {default})")
    return "http", {"url": url}


TARGETS: dict[str, Converter] = {
    "AWSS3Target": _aws_s3_target,
    "AWSSQSTarget": _aws_sqs_target,
    "ElasticsearchTarget": _elasticsearch_target,
    "KafkaTarget": _kafka_target,
    "GoogleCloudStorageTarget": _gcs_target,
    "AzureDataLakeTarget": _datalake_target,
    "CloudEventsTarget": _cloudevents_target,
    "HTTPTarget": _http_target,
    "Service": _knative_service_target,
}

# --------------------------------------------------------------------------- transformations

_OPERATIONS = ("add", "delete", "shift", "store", "parse")
_PATH_KEYS = ("key", "value", "separator")


def _ops(f: Fields, path: str) -> list[dict[str, Any]]:
    value = f.get(path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Unsupported(f"spec.{path}: expected a list of operations")
    out = []
    for i, op in enumerate(value):
        if not isinstance(op, dict) or op.get("operation") not in _OPERATIONS:
            raise Unsupported(f"spec.{path}[{i}]: expected an operation {', '.join(_OPERATIONS)}")
        paths = []
        for j, p in enumerate(op.get("paths") or []):
            if not isinstance(p, dict):
                raise Unsupported(f"spec.{path}[{i}].paths[{j}]: expected key/value/separator")
            extra = sorted(set(p) - set(_PATH_KEYS))
            if extra:
                f.ctx.problem(f"spec.{path}[{i}].paths[{j}].{extra[0]}: not a Bumblebee path key")
            # A key written empty (``key:``) is null in YAML: TriggerMesh reads it as "" (the whole document).
            paths.append({k: v for k, v in p.items() if k in _PATH_KEYS and v is not None})
        extra = sorted(set(op) - {"operation", "paths"})
        if extra:
            f.ctx.problem(f"spec.{path}[{i}].{extra[0]}: not a Bumblebee operation key")
        out.append({"operation": op["operation"], "paths": paths})
    return out


def _bumblebee(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {}
    context = _ops(f, "context")
    if context:
        config["context"] = context
    data = _ops(f, "data")
    if data:
        config["data"] = data
    common(f)
    return "mapping", config


def _jq(f: Fields) -> tuple[str, dict[str, Any]]:
    query = f.text("query")
    if not query:
        raise Unsupported("spec.query is required")
    common(f)
    # TriggerMesh keeps the last output of the query; Meshline's jq step would split the event.
    return "jq", {"program": f"last({query})", "scope": "data"}


def _xslt(f: Fields) -> tuple[str, dict[str, Any]]:
    xslt = f.peek("xslt")
    if not isinstance(xslt, dict) or "value" not in xslt or xslt.get("valueFromSecret"):
        raise Unsupported("spec.xslt: only an inline value is converted (not a Secret/ConfigMap reference)")
    f.get("xslt.value")
    f.drop("allowPerEventXSLT", "Meshline applies the configured stylesheet only")
    common(f)
    return "xslt", {"stylesheet": str(xslt["value"])}


def _xml2json(f: Fields) -> tuple[str, dict[str, Any]]:
    common(f)
    return "xml2json", {}


STEPS: dict[str, Converter] = {
    "Transformation": _bumblebee,
    "JQTransformation": _jq,
    "XSLTTransformation": _xslt,
    "XMLToJSONTransformation": _xml2json,
}
