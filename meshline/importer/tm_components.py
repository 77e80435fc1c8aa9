"""TriggerMesh/Knative component kinds → Meshline connectors and transformations.

Each converter takes the manifest (a dict) and a :class:`Context` and returns
``(meshline type, config)``; it raises :class:`Unsupported` for what it cannot
convert and records notes (credentials, behaviour differences) on the context.
Secrets (``valueFromSecret`` / ``secretKeyRef``) become secret parameters whose
default is ``${env.SECRETNAME_KEY}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meshline.importer.cel import Unsupported

__all__ = ["SOURCES", "STEPS", "TARGETS", "Context"]


@dataclass
class Context:
    """What converters add besides the component: parameters and notes (one line each)."""

    parameters: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    where: str = ""

    def note(self, text: str) -> None:
        self.notes.append(f"{self.where}: {text}" if self.where else text)

    def param(self, name: str, description: str, *, default: Any = None, secret: bool = False) -> str:
        name = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not any(p["name"] == name for p in self.parameters):
            p: dict[str, Any] = {"name": name, "description": description}
            if secret:
                p["secret"] = True
            if default is not None:
                p["default"] = default
            else:
                p["required"] = True
            self.parameters.append(p)
        return f"${{params.{name}}}"

    def secret(self, ref: Any, what: str) -> str | None:
        """A secret reference (``valueFromSecret``/``secretKeyRef``) or literal ``value`` → a config value."""
        if ref is None:
            return None
        if isinstance(ref, str):
            return ref
        if not isinstance(ref, dict):
            raise Unsupported(f"{what}: unexpected value {ref!r}")
        if "value" in ref:
            return str(ref["value"])
        sec = ref.get("valueFromSecret") or ref.get("secretKeyRef")
        if not isinstance(sec, dict) or "name" not in sec or "key" not in sec:
            raise Unsupported(f"{what}: expected value, valueFromSecret or secretKeyRef")
        env = re.sub(r"[^A-Za-z0-9]", "_", f"{sec['name']}_{sec['key']}").upper()
        self.note(
            f"{what} comes from Secret {sec['name']}/{sec['key']}: set ${env} (or --param {env.lower()})"
        )
        return self.param(
            env.lower(), f"{what} (Secret {sec['name']}/{sec['key']})", default=f"${{env.{env}}}", secret=True
        )


def _spec(doc: dict[str, Any]) -> dict[str, Any]:
    s = doc.get("spec")
    return s if isinstance(s, dict) else {}


def _arn(arn: Any, service: str) -> list[str]:
    parts = str(arn or "").split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise Unsupported(f"spec.arn: expected an {service} ARN, got {arn!r}")
    return parts


def _sqs_url(arn: Any) -> tuple[str, str]:
    p = _arn(arn, "sqs")
    region, account, name = p[3], p[4], p[5]
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}", region


def _aws_credentials(s: dict[str, Any], ctx: Context) -> None:
    auth = s.get("auth") or {}
    if auth.get("credentials") or s.get("credentials"):
        ctx.note(
            "AWS access keys come from a Secret: Meshline reads AWS credentials the way boto3 does "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role)"
        )
    if auth.get("iamRole"):
        ctx.note(f"IAM role {auth['iamRole']}: give the workers that role (workload identity)")


def _endpoint(s: dict[str, Any], config: dict[str, Any]) -> None:
    ep = s.get("endpoint")
    if isinstance(ep, dict) and ep.get("url"):
        config["endpoint_url"] = ep["url"]


# --------------------------------------------------------------------------- sources


def _aws_sqs_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    url, region = _sqs_url(s.get("arn"))
    config: dict[str, Any] = {"queue_url": url, "region": region}
    _endpoint(s, config)
    _aws_credentials(s, ctx)
    return "aws.sqs", config


def _aws_s3_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    bucket = _arn(s.get("arn"), "s3")[5]
    queue_arn = ((s.get("destination") or {}).get("sqs") or {}).get("queueARN")
    if queue_arn:
        url, region = _sqs_url(queue_arn)
    else:
        name = doc["metadata"]["name"]
        url = ctx.param(f"{name}_queue_url", f"SQS queue that receives the notifications of bucket {bucket}")
        region = ctx.param("aws_region", "AWS region", default="us-east-1")
        ctx.note(
            f"TriggerMesh created the notification queue of bucket {bucket}; Meshline reads an existing one"
        )
    if s.get("eventTypes"):
        ctx.note(
            "eventTypes: configure them on the bucket's notification; Meshline reads what the queue gets"
        )
    _aws_credentials(s, ctx)
    config: dict[str, Any] = {"queue_url": url, "region": region}
    _endpoint(s, config)
    return "aws.s3", config


def _gcs_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    name = doc["metadata"]["name"]
    pubsub = s.get("pubsub") or {}
    config: dict[str, Any] = {"bucket": s.get("bucket")}
    if pubsub.get("project"):
        config["project"] = pubsub["project"]
    config["subscription"] = ctx.param(
        f"{name}_subscription", f"Pub/Sub subscription on the notification topic of bucket {s.get('bucket')}"
    )
    ctx.note(
        "TriggerMesh created the notification topic/subscription; Meshline reads an existing subscription"
    )
    types = {
        "OBJECT_FINALIZE": "com.google.cloud.storage.objectfinalize",
        "OBJECT_METADATA_UPDATE": "com.google.cloud.storage.objectmetadataupdate",
        "OBJECT_DELETE": "com.google.cloud.storage.objectdelete",
        "OBJECT_ARCHIVE": "com.google.cloud.storage.objectarchive",
    }
    if s.get("eventTypes"):
        config["event_types"] = [types.get(t, t) for t in s["eventTypes"]]
    if s.get("serviceAccountKey") or (s.get("auth") or {}).get("serviceAccountKey"):
        ctx.note(_ADC)
    return "google.storage", config


def _pubsub_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    name = doc["metadata"]["name"]
    topic = str(s.get("topic") or "")
    m = re.match(r"^projects/([^/]+)/topics/([^/]+)$", topic)
    if m is None:
        raise Unsupported(f"spec.topic: expected projects/P/topics/T, got {topic!r}")
    sub = s.get("subscriptionID") or ctx.param(f"{name}_subscription", f"a subscription of {topic}")
    if not s.get("subscriptionID"):
        ctx.note("TriggerMesh created the subscription; Meshline reads an existing one")
    if s.get("serviceAccountKey") or (s.get("auth") or {}).get("serviceAccountKey"):
        ctx.note(_ADC)
    return "google.pubsub", {"project": m.group(1), "subscription": sub}


_ADC = "service account key: Meshline uses Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)"


def _eventhub_id(value: Any) -> tuple[str, str | None]:
    m = re.search(r"/namespaces/([^/]+)(?:/eventhubs/([^/]+))?", str(value or ""))
    if m is None:
        raise Unsupported(
            f"expected an Event Hubs resource id (…/namespaces/NS/eventhubs/HUB), got {value!r}"
        )
    return m.group(1), m.group(2)


def _azure_auth(s: dict[str, Any], ctx: Context, name: str) -> dict[str, Any]:
    auth = s.get("auth") or {}
    sas = auth.get("sasToken") or {}
    if sas.get("connectionString"):
        return {"connection_string": ctx.secret(sas["connectionString"], "Event Hubs connection string")}
    if sas.get("keyName"):
        return {
            "key_name": ctx.secret(sas["keyName"], "SAS key name"),
            "key": ctx.secret(sas.get("keyValue"), "SAS key"),
        }
    ctx.note(
        "service principal auth: Meshline reads Event Hubs with a SAS connection string; set the parameter"
    )
    return {
        "connection_string": ctx.param(
            f"{name}_connection_string", "Event Hubs connection string", secret=True
        )
    }


def _azure_eventhubs_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    name = doc["metadata"]["name"]
    namespace, hub = _eventhub_id(s.get("eventHubID"))
    config = _azure_auth(s, ctx, name)
    if "connection_string" not in config:
        config["namespace"] = namespace
    config["event_hub"] = hub
    if s.get("consumerGroup"):
        config["consumer_group"] = s["consumerGroup"]
    return "azure.eventhubs", config


def _azure_activitylogs_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    name = doc["metadata"]["name"]
    eh = ((s.get("destination") or {}).get("eventHubs")) or {}
    config = _azure_auth(s, ctx, name)
    if eh.get("namespaceID"):
        ns, _ = _eventhub_id(eh["namespaceID"])
        if "connection_string" not in config:
            config["namespace"] = ns
    if eh.get("hubName"):
        config["event_hub"] = eh["hubName"]
    if s.get("categories"):
        config["categories"] = list(s["categories"])
    ctx.note("TriggerMesh created the diagnostic setting; Meshline reads the event hub it exports to")
    return "azure.activitylogs", config


def _kafka_common(
    servers: Any, sasl: bool, mechanism: Any, user: Any, password: Any, tls: bool, ctx: Context
) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap_servers": list(servers) if isinstance(servers, list) else servers}
    if sasl:
        config["security_protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
        if mechanism:
            m = str(mechanism)
            config["sasl_mechanism"] = m if m.startswith("${") else m.upper()
        if user is not None:
            config["username"] = ctx.secret(user, "Kafka SASL user")
        if password is not None:
            config["password"] = ctx.secret(password, "Kafka SASL password")
    elif tls:
        config["security_protocol"] = "SSL"
    return config


def _kafka_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    if "knative" in str(doc.get("apiVersion", "")):
        net = s.get("net") or {}
        sasl = net.get("sasl") or {}
        tls = net.get("tls") or {}
        mech = sasl.get("type")
        if isinstance(mech, dict) and "value" in mech:
            mech = mech["value"]
        elif isinstance(mech, dict):
            ref = mech.get("secretKeyRef") or mech.get("valueFromSecret") or {}
            where = f"Secret {ref.get('name')}/{ref.get('key')}"
            mech = ctx.param("kafka_sasl_mechanism", f"SASL mechanism ({where})", default="PLAIN")
            ctx.note(f"SASL mechanism was in {where}: PLAIN unless you pass --param kafka_sasl_mechanism=…")
        config = _kafka_common(
            s.get("bootstrapServers"),
            bool(sasl.get("enable")),
            mech,
            sasl.get("user"),
            sasl.get("password"),
            bool(tls.get("enable")),
            ctx,
        )
        config["topics"] = s.get("topics")
        if s.get("consumerGroup"):
            config["group_id"] = s["consumerGroup"]
        if s.get("initialOffset"):
            config["start"] = s["initialOffset"]
    else:
        auth = s.get("auth") or {}
        config = _kafka_common(
            s.get("bootstrapServers"),
            bool(auth.get("saslEnable")),
            auth.get("securityMechanism"),
            auth.get("username"),
            auth.get("password"),
            bool(auth.get("tlsEnable")),
            ctx,
        )
        config["topics"] = s.get("topic") or s.get("topics")
        if s.get("groupID"):
            config["group_id"] = s["groupID"]
    if not config.get("topics") or not config.get("bootstrap_servers"):
        raise Unsupported("spec: bootstrapServers and topic(s) are required")
    return "kafka", config


def _webhook_source(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    name = doc["metadata"]["name"]
    config: dict[str, Any] = {"port": 8080, "path": "/", "host": "0.0.0.0"}
    if s.get("eventType"):
        config["type"] = s["eventType"]
    if s.get("basicAuthUsername"):
        config["username"] = s["basicAuthUsername"]
        config["password"] = ctx.secret(s.get("basicAuthPassword"), "webhook basic auth password")
    if s.get("eventSource"):
        ctx.note(f"eventSource {s['eventSource']!r}: Meshline sets source to the webhook's URL")
    ctx.note(f"webhook {name} listens on 0.0.0.0:8080 (TriggerMesh's port); posts must reach this process")
    return "http", config


SOURCES: dict[str, Callable[[dict[str, Any], Context], tuple[str, dict[str, Any]]]] = {
    "AWSSQSSource": _aws_sqs_source,
    "AWSS3Source": _aws_s3_source,
    "GoogleCloudStorageSource": _gcs_source,
    "GoogleCloudPubSubSource": _pubsub_source,
    "AzureEventHubsSource": _azure_eventhubs_source,
    "AzureEventHubSource": _azure_eventhubs_source,
    "AzureActivityLogsSource": _azure_activitylogs_source,
    "KafkaSource": _kafka_source,
    "WebhookSource": _webhook_source,
}

# --------------------------------------------------------------------------- targets


def _aws_s3_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    p = _arn(s.get("arn"), "s3")
    config: dict[str, Any] = {"bucket": p[5].split("/", 1)[0], "format": "jsonl"}
    if "/" in p[5]:
        config["prefix"] = p[5].split("/", 1)[1]
    if p[3]:
        config["region"] = p[3]
    ctx.note("AWSS3Target wrote one object per event; Meshline writes batched jsonl objects per window")
    _aws_credentials(s, ctx)
    return "aws.s3", config


def _aws_sqs_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    url, region = _sqs_url(s.get("arn"))
    _aws_credentials(s, ctx)
    return "aws.sqs", {"queue_url": url, "region": region}


def _elasticsearch_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    conn = s.get("connection") or {}
    config: dict[str, Any] = {"hosts": list(conn.get("addresses") or []), "index": s.get("indexName")}
    if not config["hosts"] or not config["index"]:
        raise Unsupported("spec.connection.addresses and spec.indexName are required")
    if conn.get("username"):
        config["username"] = conn["username"]
        config["password"] = ctx.secret(conn.get("password"), "Elasticsearch password")
    if conn.get("apiKey"):
        config["api_key"] = ctx.secret(conn["apiKey"], "Elasticsearch API key")
    if conn.get("skipVerify"):
        ctx.note("skipVerify: Meshline verifies TLS; trust the server's CA instead")
    if s.get("discardCloudEventContext") is False:
        ctx.note("Meshline indexes the event data (SPEC §2); CloudEvent context is not indexed")
    return "elasticsearch", config


def _kafka_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    auth = s.get("auth") or {}
    config = _kafka_common(
        s.get("bootstrapServers"),
        bool(auth.get("saslEnable")),
        auth.get("securityMechanism"),
        auth.get("username"),
        auth.get("password"),
        bool(auth.get("tlsEnable")),
        ctx,
    )
    if not s.get("topic"):
        raise Unsupported("spec.topic is required")
    config["topic"] = s["topic"]
    return "kafka", config


def _gcs_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    if not s.get("bucketName"):
        raise Unsupported("spec.bucketName is required")
    if s.get("credentialsJson"):
        ctx.note(
            "credentialsJson: Meshline uses Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)"
        )
    return "google.storage", {"bucket": s["bucketName"], "format": "jsonl"}


def _datalake_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    account = s.get("accountName") or s.get("storageAccount")
    container = s.get("containerName") or s.get("fileSystem") or s.get("container")
    if not account or not container:
        raise Unsupported("spec: the storage account and container/file system are required")
    return "azure.datalake", {
        "account_url": f"https://{account}.dfs.core.windows.net",
        "container": container,
    }


def _http_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    creds = s.get("credentials") or {}
    url = s.get("endpoint")
    if not url:
        raise Unsupported("spec.endpoint is required")
    config: dict[str, Any] = {"url": url}
    user = s.get("basicAuthUsername") or creds.get("basicAuthUsername")
    if user:
        config["username"] = user
        config["password"] = ctx.secret(
            s.get("basicAuthPassword") or creds.get("basicAuthPassword"), "HTTP basic auth password"
        )
    if doc.get("kind") == "HTTPTarget":
        method = str(s.get("method") or "POST").upper()
        if method not in ("POST", "PUT"):
            raise Unsupported(f"method {method}: the http target sends POST or PUT")
        config["method"] = method
        if s.get("headers"):
            config["headers"] = dict(s["headers"])
        if s.get("skipVerify"):
            config["verify_tls"] = False
        ctx.note(
            "HTTPTarget turned replies into events; Meshline's http target only delivers (use an http step)"
        )
    return "http", config


def _knative_service_target(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    name = doc["metadata"]["name"]
    ns = doc["metadata"].get("namespace") or "default"
    url = ctx.param(
        f"{name}_url", f"URL of the service {name}", default=f"http://{name}.{ns}.svc.cluster.local/"
    )
    return "http", {"url": url}


TARGETS: dict[str, Callable[[dict[str, Any], Context], tuple[str, dict[str, Any]]]] = {
    "AWSS3Target": _aws_s3_target,
    "AWSSQSTarget": _aws_sqs_target,
    "ElasticsearchTarget": _elasticsearch_target,
    "KafkaTarget": _kafka_target,
    "GoogleCloudStorageTarget": _gcs_target,
    "AzureDataLakeTarget": _datalake_target,
    "CloudEventsTarget": _http_target,
    "HTTPTarget": _http_target,
    "Service": _knative_service_target,
}

# --------------------------------------------------------------------------- transformations


def _ops(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Unsupported(f"{where}: expected a list of operations")
    out = []
    for op in value:
        if not isinstance(op, dict) or op.get("operation") not in (
            "add",
            "delete",
            "shift",
            "store",
            "parse",
        ):
            raise Unsupported(f"{where}: unknown operation {op!r}")
        paths = [
            {k: v for k, v in p.items() if k in ("key", "value", "separator")} for p in op.get("paths") or []
        ]
        out.append({"operation": op["operation"], "paths": paths})
    return out


def _bumblebee(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    config: dict[str, Any] = {}
    if s.get("context"):
        config["context"] = _ops(s["context"], "spec.context")
    if s.get("data"):
        config["data"] = _ops(s["data"], "spec.data")
    return "mapping", config


def _jq(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    if not s.get("query"):
        raise Unsupported("spec.query is required")
    return "jq", {"program": s["query"], "scope": "data"}


def _xslt(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    s = _spec(doc)
    xslt = s.get("xslt") or {}
    if not isinstance(xslt, dict) or "value" not in xslt:
        raise Unsupported("spec.xslt: only an inline value is converted (not a Secret/ConfigMap reference)")
    if s.get("allowPerEventXSLT"):
        ctx.note("allowPerEventXSLT: Meshline applies the configured stylesheet only")
    return "xslt", {"stylesheet": xslt["value"]}


def _xml2json(doc: dict[str, Any], ctx: Context) -> tuple[str, dict[str, Any]]:
    return "xml2json", {}


STEPS: dict[str, Callable[[dict[str, Any], Context], tuple[str, dict[str, Any]]]] = {
    "Transformation": _bumblebee,
    "JQTransformation": _jq,
    "XSLTTransformation": _xslt,
    "XMLToJSONTransformation": _xml2json,
}
