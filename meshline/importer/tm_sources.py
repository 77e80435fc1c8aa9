"""TriggerMesh/Knative source kinds → Meshline sources.

Each converter reads its manifest through :class:`~meshline.importer.manifest.Fields`
and returns ``(meshline type, config)``; what it does not read is reported by the
importer as not carried. It raises :class:`Unsupported` for a manifest it cannot
convert at all. Secrets become secret parameters (``Fields.secret``), never literals.
"""

from __future__ import annotations

import json
import re
from typing import Any

from meshline.importer.manifest import Fields, Unsupported, go_duration, ref_name
from meshline.importer.tm_common import (
    KERBEROS,
    Converter,
    aws_auth,
    basic_auth,
    common,
    endpoint,
    google_auth,
    kafka_login,
    kafka_tls,
    parse_arn,
    sqs_url,
)

__all__ = ["SOURCES"]

# --------------------------------------------------------------------------- sources


def _aws_sqs_source(f: Fields) -> tuple[str, dict[str, Any]]:
    url, region = sqs_url(f.get("arn"))
    config: dict[str, Any] = {"queue_url": url, "region": region}
    timeout = f.text("receiveOptions.visibilityTimeout")
    if timeout:
        config["visibility_timeout"] = go_duration(timeout)
    endpoint(f, config)
    aws_auth(f, config)
    common(f)
    processor = (f.text("messageProcessor") or "default").lower()
    if processor == "s3":
        f.ctx.note("spec.messageProcessor s3: read as an aws.s3 source (S3 notifications through the queue)")
        return "aws.s3", config
    if processor != "default":
        raise Unsupported(f"spec.messageProcessor {processor!r}: only default and s3 exist")
    return "aws.sqs", config


def _aws_s3_source(f: Fields) -> tuple[str, dict[str, Any]]:
    bucket = parse_arn(f.get("arn"), "s3")[5]
    queue_arn = f.get("destination.sqs.queueARN")
    if queue_arn:
        url, region = sqs_url(queue_arn, "destination.sqs.queueARN")
    else:
        url = f.ctx.param(
            f"{f.name}_queue_url", f"SQS queue that receives the notifications of bucket {bucket}"
        )
        region = f.ctx.param("aws_region", "AWS region", default="us-east-1")
        f.ctx.note(
            f"TriggerMesh created the notification queue of bucket {bucket}; Meshline reads an existing "
            f"one: pass --param {ref_name(url)}=URL"
        )
    f.drop(
        "eventTypes",
        "Meshline reads every notification the queue gets: set the types on the bucket's notification",
    )
    config: dict[str, Any] = {"queue_url": url, "region": region}
    endpoint(f, config)
    aws_auth(f, config)
    common(f)
    return "aws.s3", config


def _gcs_source(f: Fields) -> tuple[str, dict[str, Any]]:
    bucket = f.text("bucket")
    if not bucket:
        raise Unsupported("spec.bucket is required")
    config: dict[str, Any] = {"bucket": bucket}
    project = f.text("pubsub.project")
    if project:
        config["project"] = project
    f.note("pubsub.topic", "Meshline reads a subscription of this topic (the subscription parameter)")
    sub = f.ctx.param(
        f"{f.name}_subscription", f"Pub/Sub subscription on the notification topic of bucket {bucket}"
    )
    config["subscription"] = sub
    f.ctx.note(
        "TriggerMesh created the notification topic and subscription; Meshline reads an existing "
        f"subscription: pass --param {ref_name(sub)}=ID"
    )
    types = f.strings("eventTypes")
    if types:
        config["event_types"] = types
    prefix = f.text("objectNamePrefix")
    if prefix:
        config["object_name_prefix"] = prefix
    google_auth(f)
    common(f)
    return "google.storage", config


def _pubsub_source(f: Fields) -> tuple[str, dict[str, Any]]:
    topic = f.text("topic") or ""
    m = re.match(r"^projects/([^/]+)/topics/([^/]+)$", topic)
    if m is None:
        raise Unsupported(f"spec.topic: expected projects/P/topics/T, got {topic!r}")
    sub = f.text("subscriptionID")
    if not sub:
        sub = f.ctx.param(f"{f.name}_subscription", f"a subscription of {topic}")
        f.ctx.note(
            f"TriggerMesh created the subscription; Meshline reads one: pass --param {ref_name(sub)}=ID"
        )
    google_auth(f)
    common(f)
    return "google.pubsub", {"project": m.group(1), "subscription": sub}


def _eventhub_id(value: Any, path: str) -> tuple[str, str | None]:
    m = re.search(r"/namespaces/([^/]+)(?:/eventhubs/([^/]+))?", str(value or ""))
    if m is None:
        raise Unsupported(f"spec.{path}: expected an Event Hubs resource id (…/namespaces/NS/eventhubs/HUB)")
    return m.group(1), m.group(2)


def _azure_auth(f: Fields, namespace: str | None) -> dict[str, Any]:
    """A SAS connection string, or a SAS key name and key (Meshline reads Event Hubs through Kafka)."""
    conn = f.secret("auth.sasToken.connectionString", "Event Hubs connection string", "connection_string")
    if conn:
        return {"connection_string": conn}
    key_name = f.value("auth.sasToken.keyName", "SAS key name", "key_name")
    if key_name:
        key = f.secret("auth.sasToken.keyValue", "SAS key", "key")
        if not key:
            raise Unsupported("spec.auth.sasToken: keyName needs keyValue")
        return {"key_name": key_name, "key": key}
    if namespace is None:
        raise Unsupported("spec.auth: Meshline reads Event Hubs with a SAS connection string or key")
    key_name = f.ctx.param(f"{f.name}_key_name", f"SAS policy name for {f.kind} {f.name}")
    key = f.ctx.param(f"{f.name}_key", f"SAS key of that policy for {f.kind} {f.name}", secret=True)
    why = (
        "Meshline reads Event Hubs through its Kafka endpoint with a SAS key: "
        f"pass --param {ref_name(key_name)}=POLICY --param {ref_name(key)}=KEY"
    )
    if f.has("auth.servicePrincipal"):
        f.drop("auth.servicePrincipal", why)
    else:
        f.ctx.note(why)
    return {"key_name": key_name, "key": key}


def _azure_eventhubs_source(f: Fields) -> tuple[str, dict[str, Any]]:
    namespace, hub = _eventhub_id(f.get("eventHubID"), "eventHubID")
    config = _azure_auth(f, namespace)
    if "connection_string" not in config:
        config["namespace"] = namespace
    if hub:
        config["event_hub"] = hub
    group = f.text("consumerGroup")
    if group:
        config["consumer_group"] = group
    common(f)
    return "azure.eventhubs", config


def _azure_activitylogs_source(f: Fields) -> tuple[str, dict[str, Any]]:
    ns_id = f.get("destination.eventHubs.namespaceID")
    ns = _eventhub_id(ns_id, "destination.eventHubs.namespaceID")[0] if ns_id else None
    config = _azure_auth(f, ns)
    if ns and "connection_string" not in config:
        config["namespace"] = ns
    hub = f.text("destination.eventHubs.hubName")
    if hub:
        config["event_hub"] = hub
    group = f.text("destination.eventHubs.consumerGroup")
    if group:
        config["consumer_group"] = group
    categories = f.strings("categories")
    if categories:
        config["categories"] = categories
    f.get("subscriptionID")
    f.drop("destination.eventHubs.sasPolicy", "Meshline logs in with the connection string parameter")
    f.ctx.note("TriggerMesh created the diagnostic setting; Meshline reads the event hub it exports to")
    common(f)
    return "azure.activitylogs", config


def _kafka_source(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"bootstrap_servers": f.strings("bootstrapServers")}
    if "knative" in f.api:
        tls = f.flag("net.tls.enable")
        mech: str | None = None
        if f.has("net.sasl.type"):
            mech = f.value("net.sasl.type", "SASL mechanism", "sasl_mechanism")
        kafka_login(f, config, f.flag("net.sasl.enable"), mech, tls, "net.sasl.type")
        kafka_tls(f, config, "net.tls.caCert", "net.tls.cert", "net.tls.key", None)
        config["topics"] = f.strings("topics")
        group = f.text("consumerGroup")
        if group:
            config["group_id"] = group
        start = (f.text("initialOffset") or "").lower()
        if start in ("earliest", "latest"):
            config["start"] = start
        elif start:
            raise Unsupported(f"spec.initialOffset {start!r}: expected earliest or latest")
        f.drop("consumers", "Meshline reads every partition in parallel (one restriction per partition)")
    else:
        tls = f.flag("auth.tlsEnable") or f.has("auth.tls")
        mech = f.text("auth.securityMechanism")
        kafka_login(f, config, f.flag("auth.saslEnable"), mech, tls, "auth.securityMechanism")
        kafka_tls(
            f, config, "auth.tls.ca", "auth.tls.clientCert", "auth.tls.clientKey", "auth.tls.skipVerify"
        )
        f.drop("auth.kerberos", KERBEROS)
        config["topics"] = f.strings("topic") or f.strings("topics")
        group = f.text("groupID")
        if group:
            config["group_id"] = group
        common(f)
    if not config["topics"] or not config["bootstrap_servers"]:
        raise Unsupported("spec: bootstrapServers and topic(s) are required")
    return "kafka", config


def _webhook_source(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"port": 8080, "path": "/"}
    kind = f.text("eventType")
    if kind:
        config["type"] = kind
    basic_auth(f, config, "webhook", "basicAuthUsername", "basicAuthPassword")
    f.drop("eventSource", "Meshline sets the source attribute to the webhook's URL")
    f.drop("eventExtensionAttributes", "Meshline adds no extension attributes from the request")
    f.drop("corsAllowOrigin", "the http source answers no CORS requests")
    common(f)
    return "http", config


def _ping_source(f: Fields) -> tuple[str, dict[str, Any]]:
    """Knative's PingSource: a cron schedule → the generate source at the same rate."""
    schedule = " ".join((f.text("schedule") or "").split())
    m = re.fullmatch(r"(\*|\*/(\d+)) \* \* \* \*", schedule)
    if m is None or (m.group(2) is not None and int(m.group(2)) < 1):
        raise Unsupported(
            f"spec.schedule {schedule!r}: only every-N-minutes schedules (*/N * * * *) become a generate rate"
        )
    minutes = int(m.group(2) or 1)
    ns = str(f.meta.get("namespace") or "default")
    event: dict[str, Any] = {
        "type": "dev.knative.sources.ping",
        "source": f"/apis/v1/namespaces/{ns}/pingsources/{f.name}",
    }
    content_type = f.text("contentType")
    data = f.text("data")
    if data is not None:
        if content_type and "json" in content_type:
            try:
                event["data"] = json.loads(data)
            except ValueError:
                raise Unsupported("spec.data: contentType is JSON but the data does not parse") from None
        else:
            event["data"] = data
        event["datacontenttype"] = content_type or "text/plain"
    f.drop("dataBase64", "the generate source takes JSON or text data")
    f.drop(
        "timezone", "the generate source keeps a rate from the start of the run, not a wall-clock schedule"
    )
    f.ctx.note(
        f"one event every {minutes} minute(s) from the start of the run (the generate source); "
        "PingSource fired on the cron schedule"
    )
    return "generate", {"rate": round(1 / (60 * minutes), 9), "event": event}


SOURCES: dict[str, Converter] = {
    "AWSSQSSource": _aws_sqs_source,
    "AWSS3Source": _aws_s3_source,
    "GoogleCloudStorageSource": _gcs_source,
    "GoogleCloudPubSubSource": _pubsub_source,
    "AzureEventHubsSource": _azure_eventhubs_source,
    "AzureEventHubSource": _azure_eventhubs_source,
    "AzureActivityLogsSource": _azure_activitylogs_source,
    "KafkaSource": _kafka_source,
    "WebhookSource": _webhook_source,
    "PingSource": _ping_source,
}
