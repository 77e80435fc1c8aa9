"""Secrets by reference: a secret value never enters a pickled object, a pipeline proto or a staged file.

Interpolation (:mod:`meshline.spec.interpolate`) turns every string that holds a
secret into a :class:`Secret`: a ``str`` whose value is the secret (client
libraries use it as any string) and which also remembers its *template*, the
text with each secret part kept as a reference::

    url: amqp://app:${params.amqp_password}@127.0.0.1/     # value: amqp://app:s3cr3t@127.0.0.1/
                                                           # template: the text as written

A string holds a secret when it substitutes a ``secret: true`` parameter, when it
is the value of a config field marked secret (then ``${env.NAME}`` references
and text written in the file are secret too), or when it is a URL in a field
marked ``secret="url"`` whose ``user:password@`` has a password.

Pickling a :class:`Secret` (Beam pickles every DoFn with its configuration)
writes only the template. Unpickling, in whatever process runs the DoFn,
resolves each reference, in this order:

1. the store of this process: ``meshline run`` fills it when it loads the file,
   so the direct runner, Prism and Flink ``[local]`` (whose Python workers run
   inside the ``meshline`` process) find every value there;
2. the environment: ``${env.NAME}`` reads ``NAME``; a parameter ``NAME`` reads
   ``MESHLINE_PARAM_NAME`` (and the variable its default names, for
   ``default: ${env.OTHER}``);
3. a file: a parameter ``NAME`` reads ``$MESHLINE_SECRETS_DIR/NAME`` (default
   ``/etc/meshline/secrets/NAME``; one trailing newline is dropped) — a
   Kubernetes Secret mounted as a volume;
4. Google Secret Manager, when the value given for the parameter was a secret
   version ``projects/P/secrets/S/versions/V`` (Dataflow's way).

A reference found nowhere raises :class:`SecretError` naming the parameter or
variable, never a value. A secret written in the integration file itself has
no name to look up outside the process that read the file.

``repr()`` of a :class:`Secret` shows its template with every secret part as
``***``; ``str()`` and formatting give the value (libraries such as
confluent-kafka call ``str()`` on their settings), so Meshline never logs a
config value with ``%s``. :func:`mask` removes known secret values and URL
passwords from any text (errors, dead-letter reasons).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from meshline.errors import MeshlineError

__all__ = [
    "MASK",
    "DEFERRED",
    "SECRET_VERSION",
    "Secret",
    "SecretError",
    "forms",
    "is_deferred",
    "is_secret",
    "mask",
    "mask_url",
    "remember",
    "reveal",
    "secret_dir",
    "store",
]

MASK = "***"
# what a secret read from Secret Manager by the workers is where it is not read (a Dataflow submission)
DEFERRED = "SECRET-MANAGER-VALUE"
SECRET_VERSION = re.compile(r"projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+")  # use fullmatch
SECRETS_DIR = "/etc/meshline/secrets"
PARAM_ENV_PREFIX = "MESHLINE_PARAM_"

# ``${scope.name}`` references in a template; ``$${`` is a literal ``${``
_TOKEN = re.compile(r"\$\$\{|\$\{(params|env|literal)\.([^{}]+)\}")
# ``scheme://user:PASSWORD@`` (RFC 3986: a password has no / ? # @ and no white space)
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)([^\s/?#@]+)@")


class SecretError(MeshlineError):
    """A secret reference that has no value in this process (the message names it, never a value)."""


# --------------------------------------------------------------------------- the store

_LOCK = threading.Lock()
_STORE: dict[tuple[str, str], str] = {}
_KNOWN: set[str] = set()
_KNOWN_SORTED: tuple[str, ...] = ()


def store(scope: str, ref: str, value: str) -> None:
    """Keep ``value`` for ``ref`` (``params.X``, ``env.X``, ``literal.WHERE``) of one loaded document."""
    with _LOCK:
        _STORE[(scope, ref)] = str.__str__(value) if isinstance(value, str) else str(value)


def remember(*values: Any) -> None:
    """Mark values as secret in this process: :func:`mask` removes them from any text."""
    global _KNOWN_SORTED
    new = {forms_of for v in values if isinstance(v, str) and v.strip() for forms_of in forms(v)}
    new -= _KNOWN
    if not new:
        return
    with _LOCK:
        _KNOWN.update(new)
        _KNOWN_SORTED = tuple(sorted(_KNOWN, key=lambda s: (-len(s), s)))


def forms(value: str) -> set[str]:
    """A secret as it may appear in text: as is, JSON-escaped and URL-encoded."""
    text = str.__str__(value)
    out = {text, json.dumps(text)[1:-1], quote(text, safe="")}
    return {f for f in out if f.strip()}


def mask(text: str) -> str:
    """``text`` with every secret value this process knows and every URL password replaced by ``***``."""
    for secret in _KNOWN_SORTED:
        if secret in text:
            text = text.replace(secret, MASK)
    if "@" in text:
        text = mask_url(text)
    return text


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", text)


def url_password(text: str) -> str | None:
    """The password of the first ``scheme://user:password@`` in ``text`` (as written), or ``None``."""
    m = _URL_PASSWORD.search(text)
    return m.group(2) if m else None


def secret_dir() -> Path:
    """Where mounted secret files are read: ``$MESHLINE_SECRETS_DIR``, else ``/etc/meshline/secrets``."""
    return Path(os.environ.get("MESHLINE_SECRETS_DIR") or SECRETS_DIR)


# --------------------------------------------------------------------------- the type


class Secret(str):
    """A string holding a secret: pickles as its template, shows as ``***``.

    ``template`` is the text with each secret part as a ``${params.X}``,
    ``${env.X}`` or ``${literal.WHERE}`` reference (``$${`` for a literal
    ``${``); ``scope`` names the loaded document whose store holds the values;
    ``locators`` maps a reference to where a worker finds it without the store
    (``env:NAME`` or ``secretmanager:projects/…/versions/V``).
    """

    _template: str
    _scope: str
    _locators: dict[str, str]
    _whole: bool

    def __new__(
        cls,
        value: str,
        template: str,
        *,
        scope: str = "",
        locators: Mapping[str, str] | None = None,
        whole: bool = False,
    ) -> Secret:
        self = super().__new__(cls, value)
        self._template = template
        self._scope = scope
        self._locators = dict(locators or {})
        self._whole = whole  # all of it is secret (a field marked secret): shown as *** whole
        return self

    @property
    def template(self) -> str:
        return self._template

    @property
    def references(self) -> list[str]:
        """The references of the template, in order (``params.X``, ``env.X``, ``literal.WHERE``)."""
        return [f"{m.group(1)}.{m.group(2)}" for m in _TOKEN.finditer(self._template) if m.group(1)]

    def shown(self) -> str:
        """The template with every secret part as ``***`` (what ``repr`` shows)."""
        if self._whole:
            return MASK
        return _TOKEN.sub(lambda m: "${" if not m.group(1) else MASK, self._template)

    def __repr__(self) -> str:
        return repr(self.shown())

    def __str__(self) -> str:
        # the value, as a plain str: libraries (confluent-kafka, pika…) call str() on settings
        return str.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._template, self._scope, self._locators, self._whole))

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return self.__reduce__()

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: Any) -> Secret:
        return self


def is_secret(value: Any) -> bool:
    return isinstance(value, Secret)


def reveal(value: Any) -> Any:
    """``value`` with every :class:`Secret` inside (dataclass fields, dicts, lists, tuples) as its
    plain text: for a child process of this one, which has no store to resolve references
    from. Never for anything that leaves the machine (a pipeline, a staged file)."""
    if isinstance(value, Secret):
        return str.__str__(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: reveal(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return {reveal(k): reveal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(reveal(v) for v in value)
    return value


def is_deferred(value: Any) -> bool:
    """Whether ``value`` holds a secret that only the workers read (its content is unknown here)."""
    return isinstance(value, Secret) and DEFERRED in value


def _restore(template: str, scope: str, locators: Mapping[str, str], whole: bool = False) -> Secret:
    """Unpickling: the template's references resolved in this process (see the module docstring)."""
    pieces: list[str] = []
    last = 0
    for m in _TOKEN.finditer(template):
        pieces.append(template[last : m.start()])
        last = m.end()
        if not m.group(1):
            pieces.append("${")
            continue
        value = resolve(f"{m.group(1)}.{m.group(2)}", scope, locators)
        remember(url_password(value) or value)
        pieces.append(value)
    pieces.append(template[last:])
    return Secret("".join(pieces), template, scope=scope, locators=locators, whole=whole)


def resolve(ref: str, scope: str = "", locators: Mapping[str, str] | None = None) -> str:
    """The value of one reference: the store, the environment, a mounted file, Secret Manager."""
    locators = locators or {}
    found = _STORE.get((scope, ref))
    if found is not None:
        return found
    kind, _, name = ref.partition(".")
    where = locators.get(ref, "")
    if kind == "env":
        value = os.environ.get(name)
        if value is not None:
            return value
        raise SecretError(
            f"secret ${{env.{name}}}: the environment variable {name} is not set in this worker process"
        )
    if kind == "literal":
        raise SecretError(
            f"the secret written in the integration file at {name} exists only in the process that read "
            "the file: give it as a secret parameter (secret: true) instead"
        )
    value = os.environ.get(PARAM_ENV_PREFIX + name)
    if value is not None:
        return value
    if where.startswith("env:") and where[4:] in os.environ:
        return os.environ[where[4:]]
    path = secret_dir() / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        pass
    else:
        return text[:-1] if text.endswith("\n") else text
    if where.startswith("secretmanager:"):
        return read_secret_manager(where.partition(":")[2], f"parameter {name}")
    also = f", the variable {where[4:]}" if where.startswith("env:") else ""
    raise SecretError(
        f"secret parameter {name}: no value in this worker process: set the environment variable "
        f"{PARAM_ENV_PREFIX}{name}{also}, mount it as the file {path}, or pass a Secret Manager secret "
        "version (projects/PROJECT/secrets/NAME/versions/VERSION) as its value"
    )


# --------------------------------------------------------------------------- Secret Manager


def _secret_manager_client() -> Any:
    try:
        from google.cloud import secretmanager  # type: ignore[attr-defined]
    except ImportError:
        raise SecretError(
            "reading a Secret Manager secret needs google-cloud-secret-manager (part of apache-beam[gcp])"
        ) from None
    return secretmanager.SecretManagerServiceClient()


def read_secret_manager(name: str, what: str) -> str:
    """The payload of a Secret Manager secret version; a failure names ``what`` and the version."""
    name = name.strip()
    try:
        response = _secret_manager_client().access_secret_version(name=name)
        return str(response.payload.data.decode("utf-8"))
    except SecretError as e:
        raise SecretError(f"{what}: {e}") from None
    except Exception as e:
        first = f"{type(e).__name__}: {e}".splitlines()[0]
        raise SecretError(f"{what}: cannot read the secret {name}: {mask(first)}") from None


# --------------------------------------------------------------------------- helpers for connectors


def join(*parts: str) -> str:
    """The concatenation of ``parts``; a :class:`Secret` when any part is one (its template keeps the refs).

    For a value a connector derives from a secret before pickling, e.g. a
    connection string built from a key: the result pickles as references too.
    """
    if not any(isinstance(p, Secret) for p in parts):
        return "".join(parts)
    template: list[str] = []
    scope = ""
    locators: dict[str, str] = {}
    for p in parts:
        if isinstance(p, Secret):
            template.append(p.template)
            scope = scope or p._scope
            if p._scope and p._scope != scope:
                raise ValueError("cannot join secrets of two integration files")
            locators.update(p._locators)
        else:
            template.append(p.replace("${", "$${"))
    whole = all(p._whole for p in parts if isinstance(p, Secret))
    return Secret("".join(parts), "".join(template), scope=scope, locators=locators, whole=whole)
