"""``xml2json`` and ``xslt`` transformations (lxml), hardened against hostile XML.

Both read the event's ``data`` as XML text (a string or bytes) and refuse, with a
clear reason (so the event is dead-lettered with stage ``transform``):

- input over ``max_bytes`` (default 10 MiB), checked before parsing;
- any entity declaration (``<!ENTITY``: "billion laughs" expansion, external
  entities reading ``file:///etc/passwd`` or a URL) or entity reference — the
  parser never resolves entities (``resolve_entities=False``), never loads a DTD
  (``load_dtd=False``), never touches the network (``no_network=True``) and
  keeps libxml2's size/depth limits (``huge_tree=False``);
- data that is not XML text (a JSON object, a number), or malformed XML.

xml2json mapping (predictable, documented in docs/transformations/xml.md):

- the result is ``{root_name: value}``; names are ``prefix:local`` as written in
  the document (``namespaces: prefix``), bare local names (``strip``), or
  ``{uri}local`` (``uri``);
- an element without attributes or child elements is its text (a string), or
  ``null`` when empty;
- otherwise an object: attributes as ``"@name"``, child elements by name (a
  repeated name — or one listed in ``force_list`` — becomes a list, in document
  order), and non-blank text as ``"#text"`` (the text pieces of mixed content,
  stripped and joined with a space);
- all values are strings (no guessing of numbers or booleans); comments and
  processing instructions are dropped; the result's ``datacontenttype`` is
  ``application/json``.

xslt: XSLT 1.0 (libxslt) from ``stylesheet`` — inline XML, a file path, or a
``file://`` / ``http(s)://`` URL fetched once when the pipeline is built (at most
``max_bytes``). The stylesheet runs with every access denied
(:class:`lxml.etree.XSLTAccessControl`: no reading or writing files or network,
no creating directories), so ``document()`` and ``exsl:document`` fail instead
of reaching anything; ``xsl:include``/``xsl:import`` are refused (inline them). Output: with
``<xsl:output method="text"/>``, JSON when the whole text parses as JSON
(``application/json``), else the text (``text/plain``); ``method="html"`` gives
``text/html``; otherwise the XML document as text (``application/xml``).

``timeout`` (both): libxslt is C code that a stylesheet can keep busy for long
(recursive templates), so ``xslt`` runs in a child process that is killed past it
(:mod:`meshline.transforms.isolated`); ``xml2json`` does work proportional to the
input, and a call that took longer than its timeout is dead-lettered when it returns.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from meshline.config import Duration, doc
from meshline.errors import TransformError
from meshline.events import CloudEvent
from meshline.registry import BuildContext, Component
from meshline.transforms.limits import timed, timeout_field

__all__ = ["XML2JSON", "XSLT", "Xml2JsonConfig", "XsltConfig", "parse_xml", "xml_to_json"]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_XSL = "http://www.w3.org/1999/XSL/Transform"


_PARSERS = threading.local()
# encodings that write every ASCII character as its own byte
_BYTE_FAITHFUL = frozenset({"UTF-8", "US-ASCII", "ASCII", "ISO-8859-1", "LATIN1", "WINDOWS-1252"})


def _parser() -> Any:
    """This thread's hardened parser (an lxml parser may be reused, not shared between threads)."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = _PARSERS.parser = _new_parser()
    return parser


def _new_parser() -> Any:
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
    )


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        # lxml refuses str with an encoding declaration; the str is already decoded.
        return _DECLARATION.sub("", data, count=1).encode("utf-8")
    raise TransformError(f"data is not XML text but {type(data).__name__}")


def parse_xml(data: Any, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The root element of XML ``data``; :class:`TransformError` for hostile or broken input."""
    from lxml import etree

    raw = _as_bytes(data)
    if len(raw) > max_bytes:
        raise TransformError(f"XML is {len(raw)} bytes, more than max_bytes {max_bytes}")
    if b"<!ENTITY" in raw:
        raise TransformError(
            "XML declares entities (<!ENTITY>): refused (entity expansion / external entity)"
        )
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as e:
        raise TransformError(f"XML is not well-formed: {e}") from None
    if root is None:
        raise TransformError("XML has no root element")
    # In a document whose encoding writes "<", "!" and "&" as those bytes (not UTF-16 or
    # UTF-7, which could hide them), no "<!" means no DTD and no "&" no entity reference:
    # nothing to look for (a walk of the whole tree per document otherwise).
    tree = root.getroottree()
    plain = (tree.docinfo.encoding or "").upper() in _BYTE_FAITHFUL and b"\x00" not in raw
    if not plain or b"<!" in raw:
        dtd = tree.docinfo.internalDTD
        if dtd is not None and any(True for _ in dtd.entities()):
            raise TransformError(
                "XML declares entities (<!ENTITY>): refused (entity expansion / external entity)"
            )
    if not plain or b"&" in raw:
        for node in root.iter(etree.Entity):
            raise TransformError(
                f"XML references the entity &{node.name};: refused (entities are never resolved)"
            )
    return root


# --------------------------------------------------------------------------- xml2json


@dataclass(frozen=True, kw_only=True)
class Xml2JsonConfig:
    """Turn XML data into JSON: attributes as @name, text as #text, repeated elements as lists."""

    namespaces: Literal["prefix", "strip", "uri"] = doc(
        "element/attribute names: 'prefix' (prefix:local as written), 'strip' (local only), "
        "'uri' ({namespace-uri}local)",
        "prefix",
    )
    attribute_prefix: str = doc("prefix of attribute keys", "@")
    text_key: str = doc("key of the text of an element that also has attributes or children", "#text")
    force_list: list[str] = doc("element names that always become lists, even when they occur once", [])
    max_bytes: int = doc("refuse XML larger than this many bytes", DEFAULT_MAX_BYTES)
    timeout: Duration = timeout_field()

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be >= 1, got {self.max_bytes}")
        if not self.text_key:
            raise ValueError("text_key: must not be empty")


def _namer(mode: str) -> Callable[[Any, str], str]:
    from lxml import etree

    def name(node: Any, tag: str) -> str:
        if tag[:1] != "{":  # no namespace: the name as written (QName would say the same)
            return tag
        q = etree.QName(tag)
        if q.namespace is None or mode == "strip":
            return q.localname
        if mode == "uri":
            return f"{{{q.namespace}}}{q.localname}"
        prefix = node.prefix if node is not None else None
        return f"{prefix}:{q.localname}" if prefix else q.localname

    return name


def _attr_name(elem: Any, tag: str, mode: str) -> str:
    if tag[:1] != "{":  # no namespace (the common case): the name as written
        return tag
    from lxml import etree

    q = etree.QName(tag)
    if q.namespace is None or mode == "strip":
        return q.localname
    if mode == "uri":
        return f"{{{q.namespace}}}{q.localname}"
    for prefix, uri in elem.nsmap.items():
        if uri == q.namespace and prefix:
            return f"{prefix}:{q.localname}"
    return q.localname


def xml_to_json(root: Any, config: Xml2JsonConfig) -> dict[str, Any]:
    """The documented mapping of an element tree to JSON."""
    name = _namer(config.namespaces)
    force = frozenset(config.force_list)
    at, text_key, mode = config.attribute_prefix, config.text_key, config.namespaces

    def convert(elem: Any) -> Any:
        children = [c for c in elem if isinstance(c.tag, str)]  # elements only
        texts = [elem.text] + [c.tail for c in elem]
        text = " ".join(t.strip() for t in texts if t and t.strip())
        if not children and not elem.attrib:
            return text if text else None
        out: dict[str, Any] = {}
        for k, v in elem.attrib.items():
            out[at + _attr_name(elem, k, mode)] = v
        for child in children:
            key = name(child, child.tag)
            value = convert(child)  # never a list: lists below are made by repetition only
            if key in out:
                existing = out[key]
                if isinstance(existing, list):
                    existing.append(value)
                else:
                    out[key] = [existing, value]
            else:
                out[key] = [value] if key in force else value
        if text:
            out[text_key] = text
        return out

    return {name(root, root.tag): convert(root)}


def build_xml2json(config: Xml2JsonConfig, ctx: BuildContext) -> Callable[[CloudEvent], CloudEvent]:
    def xml2json(event: CloudEvent) -> CloudEvent:
        root = parse_xml(event.data, config.max_bytes)
        return event.replace(data=xml_to_json(root, config), datacontenttype="application/json")

    return timed(xml2json, "xml2json", float(config.timeout))


XML2JSON = Component(
    id="xml2json",
    kind="transformation",
    config=Xml2JsonConfig,
    build=build_xml2json,
    description="Turn XML data into JSON (@attributes, repeated elements as lists); hostile XML is refused.",
)


# --------------------------------------------------------------------------- xslt


@dataclass(frozen=True, kw_only=True)
class XsltConfig:
    """Apply an XSLT 1.0 stylesheet to XML data, with every file and network access denied."""

    stylesheet: str = doc(
        "inline XSLT, a file path, or a file:// or http(s):// URL (read once at start)",
        path=True,
    )
    parameters: dict[str, str] = doc("stylesheet parameters (xsl:param), passed as strings", {})
    max_bytes: int = doc("refuse input XML (and a stylesheet) larger than this many bytes", DEFAULT_MAX_BYTES)
    timeout: Duration = timeout_field()

    def __post_init__(self) -> None:
        if not self.stylesheet.strip():
            raise ValueError("stylesheet: must not be empty")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be >= 1, got {self.max_bytes}")
        s = self.stylesheet.lstrip()
        if not s.startswith("<") and "://" in s and not s.startswith(("file://", "http://", "https://")):
            raise ValueError(
                f"stylesheet: only file://, http:// and https:// URLs are allowed, got {s[:80]!r}"
            )
        if s.startswith("<"):  # inline: compile now, so a broken one is a config error
            try:
                compile_stylesheet(_as_bytes(s), self.max_bytes)
            except TransformError as e:
                raise ValueError(str(e)) from None


def _read_limited(stream: Any, limit: int, what: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TransformError(f"stylesheet {what} is larger than max_bytes {limit}")
    return bytes(data)


def load_stylesheet(spec: str, max_bytes: int) -> bytes:
    """The stylesheet's bytes: inline text, or read once from a path or an allowed URL."""
    s = spec.lstrip()
    if s.startswith("<"):
        return _as_bytes(s)
    if s.startswith(("http://", "https://")):
        try:
            import urllib.request  # only for a stylesheet given as a URL

            with urllib.request.urlopen(s, timeout=30) as resp:
                return _read_limited(resp, max_bytes, s)
        except OSError as e:
            raise TransformError(f"cannot fetch stylesheet {s}: {e}") from None
    path = Path(s[len("file://") :] if s.startswith("file://") else s)
    try:
        with path.open("rb") as fh:
            return _read_limited(fh, max_bytes, str(path))
    except OSError as e:
        raise TransformError(f"cannot read stylesheet {path}: {e.strerror or e}") from None


def compile_stylesheet(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Any, str]:
    """An :class:`lxml.etree.XSLT` that may access nothing, and its output method."""
    from lxml import etree

    try:
        doc_root = parse_xml(raw, max_bytes)
    except TransformError as e:
        raise TransformError(f"stylesheet: {e}") from None
    for tag in ("include", "import"):
        for node in doc_root.iter(f"{{{_XSL}}}{tag}"):
            raise TransformError(f"stylesheet: xsl:{tag} ({node.get('href')}) is not allowed: inline it")
    method = "xml"
    for out in doc_root.iter(f"{{{_XSL}}}output"):
        method = (out.get("method") or "xml").strip().lower()
    try:
        xslt = etree.XSLT(doc_root.getroottree(), access_control=etree.XSLTAccessControl.DENY_ALL)
    except etree.XSLTParseError as e:
        raise TransformError(f"stylesheet is not valid XSLT 1.0: {e}") from None
    return xslt, method


def build_xslt(config: XsltConfig, ctx: BuildContext) -> Any:
    """The step runs in a child process (:class:`~meshline.transforms.isolated.IsolatedStep`)."""
    from meshline.transforms.isolated import IsolatedStep

    return IsolatedStep("meshline.transforms.xml:xslt_in_child", config, "xslt", config.timeout)


def xslt_in_child(config: XsltConfig) -> Callable[[CloudEvent], CloudEvent]:
    from lxml import etree

    xslt, method = compile_stylesheet(load_stylesheet(config.stylesheet, config.max_bytes), config.max_bytes)
    params = {k: etree.XSLT.strparam(v) for k, v in config.parameters.items()}

    def apply_xslt(event: CloudEvent) -> CloudEvent:
        root = parse_xml(event.data, config.max_bytes)
        try:
            result = xslt(root.getroottree(), **params)
        except etree.XSLTApplyError as e:
            raise TransformError(f"XSLT failed: {e}") from None
        text = str(result)
        if method == "text":
            try:
                return event.replace(data=orjson.loads(text), datacontenttype="application/json")
            except orjson.JSONDecodeError:
                return event.replace(data=text, datacontenttype="text/plain")
        if method == "html":
            return event.replace(data=text, datacontenttype="text/html")
        if result.getroot() is None:
            raise TransformError("XSLT produced no document")
        return event.replace(data=text, datacontenttype="application/xml")

    return apply_xslt


XSLT = Component(
    id="xslt",
    kind="transformation",
    config=XsltConfig,
    build=build_xslt,
    description="Apply an XSLT 1.0 stylesheet to XML data (no file or network access from the stylesheet).",
    batched=True,
)
