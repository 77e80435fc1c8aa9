"""Helpers the TriggerMesh converters share (AWS, Google and Kafka settings).

Every helper reads through :class:`~meshline.importer.manifest.Fields`, so what it
carries, notes or drops counts as read, and secrets become parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshline.importer.manifest import Fields, Unsupported, ref_name

__all__ = [
    "ADC",
    "KAFKA_MECHANISMS",
    "KERBEROS",
    "Converter",
    "parse_arn",
    "aws_auth",
    "basic_auth",
    "common",
    "endpoint",
    "google_auth",
    "kafka_login",
    "kafka_tls",
    "sqs_url",
]

Converter = Callable[[Fields], tuple[str, dict[str, Any]]]

# What meshline/connectors/kafka/config.py accepts (librdkafka here has no GSSAPI).
KAFKA_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def parse_arn(arn: Any, service: str, path: str = "arn") -> list[str]:
    parts = str(arn or "").split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise Unsupported(f"spec.{path}: expected an {service} ARN, got {arn!r}")
    return parts


def sqs_url(arn: Any, path: str = "arn") -> tuple[str, str]:
    p = parse_arn(arn, "sqs", path)
    region, account, name = p[3], p[4], p[5]
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}", region


def aws_auth(f: Fields, config: dict[str, Any]) -> None:
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


def endpoint(f: Fields, config: dict[str, Any]) -> None:
    url = f.text("endpoint.url")
    if url:
        config["endpoint_url"] = url


ADC = "Meshline uses Application Default Credentials: point GOOGLE_APPLICATION_CREDENTIALS at this key"


def google_auth(f: Fields) -> None:
    for path in ("auth.serviceAccountKey", "serviceAccountKey"):
        f.drop(path, ADC)
    for path in ("auth.gcpServiceAccount", "auth.kubernetesServiceAccount"):
        f.drop(path, "workload identity: run the workers as that service account")


def basic_auth(f: Fields, config: dict[str, Any], what: str, user: str, password: str) -> None:
    """``username``/``password`` of ``config`` from the spec fields ``user`` and ``password``
    (the password as a secret parameter); nothing when ``user`` is not set or already carried."""
    name = f.text(user)
    if not name or "username" in config:
        return
    config["username"] = name
    value = f.secret(password, f"{what} basic auth password", "password")
    if not value:
        raise Unsupported(f"spec.{user} needs {password}")
    config["password"] = value


def common(f: Fields) -> None:
    """Fields every TriggerMesh component may carry that mean nothing to Meshline."""
    f.drop("adapterOverrides", "Kubernetes deployment settings are not part of an integration")


def kafka_login(
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


def kafka_tls(f: Fields, config: dict[str, Any], ca: str, cert: str, key: str, skip: str | None) -> None:
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


KERBEROS = "Kerberos (GSSAPI) is not supported by Meshline's kafka connector"
