"""TriggerMesh/Knative component kinds → Meshline connectors and transformations.

Each converter reads its manifest through :class:`~meshline.importer.manifest.Fields`
and returns ``(meshline type, config)``. Every field it carries, turns into a note or
drops with a reason is read through ``Fields``; whatever it did not read is reported by
the importer as not carried. It raises :class:`Unsupported` for a manifest it cannot
convert at all. Secrets become secret parameters (``Fields.secret``), never literals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from meshline.importer.manifest import Fields, Unsupported, go_duration, ref_name

__all__ = ["SOURCES", "STEPS", "TARGETS", "Converter", "KAFKA_MECHANISMS"]

Converter = Callable[[Fields], tuple[str, dict[str, Any]]]

# What meshline/connectors/kafka/config.py accepts (librdkafka here has no GSSAPI).
KAFKA_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _arn(arn: Any, service: str, path: str = "arn") -> list[str]:
    parts = str(arn or "").split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise Unsupported(f"spec.{path}: expected an {service} ARN, got {arn!r}")
    return parts


def _sqs_url(arn: Any, path: str = "arn") -> tuple[str, str]:
    p = _arn(arn, "sqs", path)
    region, account, name = p[3], p[4], p[5]
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}", region


def _aws_auth(f: Fields, config: dict[str, Any]) -> None:
    """``spec.auth`` (and the older ``spec.credentials``) of an AWS component."""
    for base in ("auth.credentials", "credentials"):
        key_id = f.secret(f"{base}.accessKeyID", "AWS access key id", "access_key_id")
        if key_id:
            config["access_key_id"] = key_id
        secret = f.secret(f"{base}.secretAccessKey", "AWS secret access key", "secret_access_key")
        if secret:
            config["secret_access_key"] = secret
        token = f.secret(f"{base}.sessionToken", "AWS session token", "session_token")
        if token:
            config["session_token"] = token
        role = f.text(f"{base}.assumeIamRole")
        if role:
            config["role_arn"] = role
    if ("access_key_id" in config) != ("secret_access_key" in config):
        raise Unsupported("spec.auth.credentials: accessKeyID and secretAccessKey go together")
    irsa = (
        "IAM role for the service account: run the workers with this role "
        "(Meshline reads credentials as boto3 does)"
    )
    f.note("auth.iamRole", irsa)
    f.note("auth.iam.roleArn", irsa)
    f.drop("auth.iam.serviceAccount", "Meshline creates no Kubernetes service account")


def _endpoint(f: Fields, config: dict[str, Any]) -> None:
    url = f.text("endpoint.url")
    if url:
        config["endpoint_url"] = url


_ADC = "Meshline uses Application Default Credentials: point GOOGLE_APPLICATION_CREDENTIALS at this key"


def _google_auth(f: Fields) -> None:
    for path in ("auth.serviceAccountKey", "serviceAccountKey"):
        f.drop(path, _ADC)
    for path in ("auth.gcpServiceAccount", "auth.kubernetesServiceAccount"):
        f.drop(path, "workload identity: run the workers as that service account")


def _common(f: Fields) -> None:
    """Fields every TriggerMesh component may carry that mean nothing to Meshline."""
    f.drop("adapterOverrides", "Kubernetes deployment settings are not part of an integration")


# --------------------------------------------------------------------------- sources


def _aws_sqs_source(f: Fields) -> tuple[str, dict[str, Any]]:
    url, region = _sqs_url(f.get("arn"))
    config: dict[str, Any] = {"queue_url": url, "region": region}
    timeout = f.text("receiveOptions.visibilityTimeout")
    if timeout:
        config["visibility_timeout"] = go_duration(timeout)
    _endpoint(f, config)
    _aws_auth(f, config)
    _common(f)
    processor = (f.text("messageProcessor") or "default").lower()
    if processor == "s3":
        f.ctx.note("spec.messageProcessor s3: read as an aws.s3 source (S3 notifications through the queue)")
        return "aws.s3", config
    if processor != "default":
        raise Unsupported(f"spec.messageProcessor {processor!r}: only default and s3 exist")
    return "aws.sqs", config


def _aws_s3_source(f: Fields) -> tuple[str, dict[str, Any]]:
    bucket = _arn(f.get("arn"), "s3")[5]
    queue_arn = f.get("destination.sqs.queueARN")
    if queue_arn:
        url, region = _sqs_url(queue_arn, "destination.sqs.queueARN")
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
    _endpoint(f, config)
    _aws_auth(f, config)
    _common(f)
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
    _google_auth(f)
    _common(f)
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
    _google_auth(f)
    _common(f)
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
    _common(f)
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
    _common(f)
    return "azure.activitylogs", config


def _kafka_login(
    f: Fields, config: dict[str, Any], sasl: bool, mechanism: str | None, tls: bool, where: str
) -> None:
    """SASL mechanism, user and password of a Kafka component (TriggerMesh's ``spec.auth``)."""
    if not sasl:
        if tls:
            config["security_protocol"] = "SSL"
        return
    config["security_protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    m = (mechanism or "PLAIN").strip()
    unsupported: str | None = None
    if m.startswith("${params."):
        config["sasl_mechanism"] = m
    elif m.upper() in KAFKA_MECHANISMS:
        config["sasl_mechanism"] = m.upper()
    else:
        unsupported = "GSSAPI (Kerberos)" if m.upper() == "GSSAPI" else m
        config["sasl_mechanism"] = f.ctx.param(
            f"{f.name}_sasl_mechanism",
            f"SASL mechanism for {f.kind} {f.name}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 "
            f"(the manifest used {unsupported}, which Meshline's kafka connector does not support)",
        )
    user = f.value("auth.username", "Kafka SASL user name", "username") or f.value(
        "net.sasl.user", "Kafka SASL user name", "username"
    )
    password = f.secret("auth.password", "Kafka SASL password", "password") or f.secret(
        "net.sasl.password", "Kafka SASL password", "password"
    )
    if user is None:
        user = f.ctx.param(f"{f.name}_username", f"Kafka SASL user name for {f.kind} {f.name}")
    if password is None:
        password = f.ctx.param(
            f"{f.name}_password", f"Kafka SASL password for {f.kind} {f.name}", secret=True
        )
    config["username"] = user
    config["password"] = password
    if unsupported:
        params = [
            ref_name(v) for v in (config["sasl_mechanism"], user, password) if v.startswith("${params.")
        ]
        f.ctx.problem(
            f"spec.{where}: {unsupported} is not supported: Meshline's kafka connector logs in "
            f"with {', '.join(KAFKA_MECHANISMS)} only; pass {', '.join(f'--param {p}=…' for p in params)} "
            "for one of those"
        )


def _kafka_tls(f: Fields, config: dict[str, Any], ca: str, cert: str, key: str, skip: str | None) -> None:
    """TLS material: Meshline's kafka connector reads PEM files, so each becomes a file parameter."""
    hint = "FILE (a PEM file holding it)"
    v = f.secret(ca, "Kafka CA certificate", "tls_ca", hint=hint, secret=False)
    if v:
        config["tls_ca"] = v
    v = f.secret(cert, "Kafka client certificate", "tls_cert", hint=hint, secret=False)
    if v:
        config["tls_cert"] = v
    v = f.secret(key, "Kafka client private key", "tls_key", hint=hint)
    if v:
        config["tls_key"] = v
    if skip and f.flag(skip):
        config["tls_verify"] = False
        f.ctx.note(f"spec.{skip}: the brokers' certificates are not verified (tls_verify: false)")


_KERBEROS = "Kerberos (GSSAPI) is not supported by Meshline's kafka connector"


def _kafka_source(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"bootstrap_servers": f.strings("bootstrapServers")}
    if "knative" in f.api:
        tls = f.flag("net.tls.enable")
        mech: str | None = None
        if f.has("net.sasl.type"):
            mech = f.value("net.sasl.type", "SASL mechanism", "sasl_mechanism")
        _kafka_login(f, config, f.flag("net.sasl.enable"), mech, tls, "net.sasl.type")
        _kafka_tls(f, config, "net.tls.caCert", "net.tls.cert", "net.tls.key", None)
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
        _kafka_login(f, config, f.flag("auth.saslEnable"), mech, tls, "auth.securityMechanism")
        _kafka_tls(
            f, config, "auth.tls.ca", "auth.tls.clientCert", "auth.tls.clientKey", "auth.tls.skipVerify"
        )
        f.drop("auth.kerberos", _KERBEROS)
        config["topics"] = f.strings("topic") or f.strings("topics")
        group = f.text("groupID")
        if group:
            config["group_id"] = group
        _common(f)
    if not config["topics"] or not config["bootstrap_servers"]:
        raise Unsupported("spec: bootstrapServers and topic(s) are required")
    return "kafka", config


def _webhook_source(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"port": 8080, "path": "/"}
    kind = f.text("eventType")
    if kind:
        config["type"] = kind
    user = f.text("basicAuthUsername")
    if user:
        config["username"] = user
        password = f.secret("basicAuthPassword", "webhook basic auth password", "password")
        if not password:
            raise Unsupported("spec.basicAuthUsername needs basicAuthPassword")
        config["password"] = password
    f.drop("eventSource", "Meshline sets the source attribute to the webhook's URL")
    f.drop("eventExtensionAttributes", "Meshline adds no extension attributes from the request")
    f.drop("corsAllowOrigin", "the http source answers no CORS requests")
    _common(f)
    return "http", config


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
}

# --------------------------------------------------------------------------- targets

_PAYLOAD_POLICY = "Meshline targets send no response events; failed deliveries go to the dead-letter target"


def _aws_s3_target(f: Fields) -> tuple[str, dict[str, Any]]:
    p = _arn(f.get("arn"), "s3")
    config: dict[str, Any] = {"bucket": p[5].split("/", 1)[0], "format": "jsonl"}
    if "/" in p[5]:
        config["prefix"] = p[5].split("/", 1)[1]
    if p[3]:
        config["region"] = p[3]
    f.ctx.note("AWSS3Target wrote one object per event; Meshline writes batched jsonl objects per window")
    if f.flag("discardCloudEventContext"):
        f.drop("discardCloudEventContext", "the aws.s3 target writes whole events (jsonl)")
    _aws_auth(f, config)
    _common(f)
    return "aws.s3", config


def _aws_sqs_target(f: Fields) -> tuple[str, dict[str, Any]]:
    url, region = _sqs_url(f.get("arn"))
    config: dict[str, Any] = {"queue_url": url, "region": region}
    # TriggerMesh sent the whole event as the body unless told to discard its context.
    config["mode"] = "binary" if f.flag("discardCloudEventContext") else "structured"
    f.drop(
        "messageGroupId",
        "the aws.sqs target takes the group id from an event attribute (message_group_id); "
        "set one with a mapping step",
    )
    _aws_auth(f, config)
    _common(f)
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
    _common(f)
    return "elasticsearch", config


def _kafka_target(f: Fields) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"bootstrap_servers": f.strings("bootstrapServers")}
    auth_tls = f.flag("auth.tlsEnable") or f.has("auth.tls")
    mech = f.text("auth.securityMechanism")
    _kafka_login(f, config, f.flag("auth.saslEnable"), mech, auth_tls, "auth.securityMechanism")
    _kafka_tls(f, config, "auth.tls.ca", "auth.tls.clientCert", "auth.tls.clientKey", "auth.tls.skipVerify")
    f.drop("auth.kerberos", _KERBEROS)
    topic = f.text("topic")
    if not topic or not config["bootstrap_servers"]:
        raise Unsupported("spec.bootstrapServers and spec.topic are required")
    config["topic"] = topic
    # TriggerMesh wrote the whole event as the record value unless told to discard its context.
    config["mode"] = "binary" if f.flag("discardCloudEventContext") else "structured"
    for path in ("topicReplicationFactor", "topicPartitions"):
        f.drop(path, "Meshline does not create topics")
    _common(f)
    return "kafka", config


def _gcs_target(f: Fields) -> tuple[str, dict[str, Any]]:
    bucket = f.text("bucketName")
    if not bucket:
        raise Unsupported("spec.bucketName is required")
    f.drop("credentialsJson", _ADC)
    _google_auth(f)
    if f.flag("discardCloudEventContext"):
        f.drop("discardCloudEventContext", "the google.storage target writes whole events (jsonl)")
    f.drop("eventOptions.payloadPolicy", _PAYLOAD_POLICY)
    _common(f)
    return "google.storage", {"bucket": bucket, "format": "jsonl"}


def _datalake_target(f: Fields) -> tuple[str, dict[str, Any]]:
    account = f.text("accountName") or f.text("storageAccount")
    container = f.text("containerName") or f.text("fileSystem") or f.text("container")
    if not account or not container:
        raise Unsupported("spec: the storage account and container/file system are required")
    _common(f)
    return "azure.datalake", {
        "account_url": f"https://{account}.dfs.core.windows.net",
        "container": container,
    }


# Header names whose values are credentials: they become secret parameters.
_SECRET_HEADER = re.compile(r"(?i)authorization|token|secret|api[-_]?key|password|signature|cookie")


def _cloudevents_target(f: Fields) -> tuple[str, dict[str, Any]]:
    url = f.text("endpoint")
    if not url:
        raise Unsupported("spec.endpoint is required")
    path = f.text("path")
    if path:
        url = url.rstrip("/") + "/" + path.lstrip("/")
    config: dict[str, Any] = {"url": url}
    user = f.text("credentials.basicAuth.username")
    if user:
        config["username"] = user
        password = f.secret("credentials.basicAuth.password", "HTTP basic auth password", "password")
        if not password:
            raise Unsupported("spec.credentials.basicAuth: username needs password")
        config["password"] = password
    # An older shape some manifests use.
    user = f.text("credentials.basicAuthUsername") or f.text("basicAuthUsername")
    if user and "username" not in config:
        config["username"] = user
        password = f.secret(
            "credentials.basicAuthPassword", "HTTP basic auth password", "password"
        ) or f.secret("basicAuthPassword", "HTTP basic auth password", "password")
        if not password:
            raise Unsupported("spec: basicAuthUsername needs basicAuthPassword")
        config["password"] = password
    _common(f)
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
            if _SECRET_HEADER.search(str(name)):
                out[str(name)] = f.secret(f"headers.{name}", f"HTTP header {name}", f"header_{name}")
            else:
                out[str(name)] = str(f.get(f"headers.{name}"))
        config["headers"] = out
    user = f.text("basicAuthUsername")
    if user:
        config["username"] = user
        password = f.secret("basicAuthPassword", "HTTP basic auth password", "password")
        if not password:
            raise Unsupported("spec.basicAuthUsername needs basicAuthPassword")
        config["password"] = password
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
    _common(f)
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
            paths.append({k: v for k, v in p.items() if k in _PATH_KEYS})
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
    _common(f)
    return "mapping", config


def _jq(f: Fields) -> tuple[str, dict[str, Any]]:
    query = f.text("query")
    if not query:
        raise Unsupported("spec.query is required")
    _common(f)
    # TriggerMesh keeps the last output of the query; Meshline's jq step would split the event.
    return "jq", {"program": f"last({query})", "scope": "data"}


def _xslt(f: Fields) -> tuple[str, dict[str, Any]]:
    xslt = f.peek("xslt")
    if not isinstance(xslt, dict) or "value" not in xslt or xslt.get("valueFromSecret"):
        raise Unsupported("spec.xslt: only an inline value is converted (not a Secret/ConfigMap reference)")
    f.get("xslt.value")
    f.drop("allowPerEventXSLT", "Meshline applies the configured stylesheet only")
    _common(f)
    return "xslt", {"stylesheet": str(xslt["value"])}


def _xml2json(f: Fields) -> tuple[str, dict[str, Any]]:
    _common(f)
    return "xml2json", {}


STEPS: dict[str, Converter] = {
    "Transformation": _bumblebee,
    "JQTransformation": _jq,
    "XSLTTransformation": _xslt,
    "XMLToJSONTransformation": _xml2json,
}
