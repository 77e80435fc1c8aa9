"""xml2json and xslt: the documented mapping, output rules, and hostile XML refused (not resolved)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from meshline.config import parse_config
from meshline.errors import ConfigError, TransformError
from meshline.events import CloudEvent
from meshline.registry import BuildContext, lookup

CTX = BuildContext(integration="t", name="step")


def _step(type_id: str, config: dict):
    component = lookup("transformation", type_id)
    assert component is not None
    return component.build(parse_config(component.config, config, where="test"), CTX)


def _event(data, ct: str | None = "application/xml") -> CloudEvent:
    return CloudEvent.create(id="1", source="/t", type="t", data=data, datacontenttype=ct)


ORDER = """<?xml version="1.0" encoding="UTF-8"?>
<order id="7" xmlns:x="urn:x">
  <item sku="a">Pen</item>
  <item sku="b">Ink</item>
  <x:note>fragile</x:note>
  <total>12.50</total>
  <empty/>
  <mixed>hello <b>big</b> world</mixed>
</order>"""


def test_xml2json_mapping():
    out = _step("xml2json", {})(_event(ORDER))
    assert out.attributes["datacontenttype"] == "application/json"
    assert out.id == "1" and out.type == "t"
    assert out.data == {
        "order": {
            "@id": "7",
            "item": [{"@sku": "a", "#text": "Pen"}, {"@sku": "b", "#text": "Ink"}],
            "x:note": "fragile",
            "total": "12.50",
            "empty": None,
            "mixed": {"b": "big", "#text": "hello world"},
        }
    }


def test_xml2json_options_and_bytes_input():
    xml = b'<r xmlns="urn:d" xmlns:p="urn:p"><p:a p:k="v">1</p:a></r>'
    assert _step("xml2json", {"namespaces": "strip", "force_list": ["a"]})(_event(xml)).data == {
        "r": {"a": [{"@k": "v", "#text": "1"}]}
    }
    assert _step("xml2json", {"namespaces": "uri", "attribute_prefix": "-"})(_event(xml)).data == {
        "{urn:d}r": {"{urn:p}a": {"-{urn:p}k": "v", "#text": "1"}}
    }
    assert _step("xml2json", {})(_event(xml)).data == {"r": {"p:a": {"@p:k": "v", "#text": "1"}}}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>"""


def _xxe(target: str) -> str:
    return f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "{target}">]><r>&xxe;</r>'


@pytest.mark.parametrize("type_id", ["xml2json", "xslt"])
def test_hostile_xml_is_refused_not_resolved(type_id, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    config = {"stylesheet": IDENTITY} if type_id == "xslt" else {}
    step = _step(type_id, config)
    for data in (BILLION_LAUGHS, _xxe(f"file://{secret}"), _xxe("http://127.0.0.1:9/x")):
        with pytest.raises(TransformError, match="entit") as e:
            step(_event(data))
        assert "TOPSECRET" not in str(e.value)
    # a parameter entity pulling an external DTD
    with pytest.raises(TransformError, match="entit"):
        step(_event(f'<!DOCTYPE r [<!ENTITY % p SYSTEM "file://{secret}"> %p;]><r/>'))


def test_size_limit_and_non_xml_data():
    step = _step("xml2json", {"max_bytes": 100})
    with pytest.raises(TransformError, match="max_bytes"):
        step(_event("<r>" + "x" * 200 + "</r>"))
    with pytest.raises(TransformError, match="not XML text"):
        step(_event({"a": 1}, "application/json"))
    with pytest.raises(TransformError, match="well-formed"):
        step(_event("<r><unclosed></r>"))
    with pytest.raises(TransformError, match="depth"):  # libxml2's nesting limit (huge_tree=False)
        _step("xml2json", {})(_event("<a>" * 5000 + "</a>" * 5000))


IDENTITY = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>
</xsl:stylesheet>"""

TO_JSON = """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:param name="currency" select="'EUR'"/>
  <xsl:template match="/order">{"id": "<xsl:value-of select="@id"/>", "items": <xsl:value-of
    select="count(item)"/>, "currency": "<xsl:value-of select="$currency"/>"}</xsl:template>
</xsl:stylesheet>"""


def test_xslt_outputs_xml_json_or_text(tmp_path):
    out = _step("xslt", {"stylesheet": IDENTITY})(_event(ORDER))
    assert out.attributes["datacontenttype"] == "application/xml" and '<item sku="a">Pen</item>' in out.data
    path = tmp_path / "to-json.xsl"
    path.write_text(TO_JSON)
    for ref in (str(path), f"file://{path}"):
        out = _step("xslt", {"stylesheet": ref, "parameters": {"currency": "USD"}})(_event(ORDER))
        assert out.data == {"id": "7", "items": 2, "currency": "USD"}
        assert out.attributes["datacontenttype"] == "application/json"
    text = TO_JSON.replace('{"id"', "id=").replace("}</xsl:template>", "</xsl:template>")
    out = _step("xslt", {"stylesheet": text})(_event(ORDER))
    assert out.attributes["datacontenttype"] == "text/plain" and out.data.startswith("id=")


def test_xslt_stylesheet_from_http_is_fetched_once():
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = TO_JSON.encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        step = _step("xslt", {"stylesheet": f"http://127.0.0.1:{server.server_port}/s.xsl"})
        assert [step(_event(ORDER)).data["items"] for _ in range(3)] == [2, 2, 2]
        assert hits == ["/s.xsl"]
    finally:
        server.shutdown()


def test_stylesheets_cannot_read_files_or_the_network(tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_text("<s>TOPSECRET</s>")
    reads = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
      <xsl:template match="/"><r><xsl:copy-of select="document('file://{secret}')"/></r></xsl:template>
    </xsl:stylesheet>"""
    with pytest.raises(TransformError) as e:
        _step("xslt", {"stylesheet": reads})(_event("<a/>"))
    assert "TOPSECRET" not in str(e.value)
    net = reads.replace(f"file://{secret}", "http://127.0.0.1:9/x.xml")
    with pytest.raises(TransformError):
        _step("xslt", {"stylesheet": net})(_event("<a/>"))
    writes = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
        xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl">
      <xsl:template match="/"><exsl:document href="file://{tmp_path}/pwned.txt">x</exsl:document><r/></xsl:template>
    </xsl:stylesheet>"""
    with pytest.raises(TransformError):
        _step("xslt", {"stylesheet": writes})(_event("<a/>"))
    assert not (tmp_path / "pwned.txt").exists()
    include = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
      <xsl:include href="file://{tmp_path}/other.xsl"/></xsl:stylesheet>"""
    (tmp_path / "other.xsl").write_text(IDENTITY)
    with pytest.raises(ConfigError, match="xsl:include"):  # refused when the file is loaded
        _step("xslt", {"stylesheet": include})


def test_stylesheet_urls_are_limited_to_file_and_http_and_inline_ones_are_checked():
    component = lookup("transformation", "xslt")
    assert component is not None
    with pytest.raises(ConfigError, match="file://, http:// and https://"):
        parse_config(component.config, {"stylesheet": "ftp://example/x.xsl"}, where="test")
    with pytest.raises(ConfigError, match="stylesheet: XML is not well-formed"):
        parse_config(component.config, {"stylesheet": IDENTITY.replace("</xsl:copy>", "")}, where="test")


def test_xslt_file_stylesheet_size_limit(tmp_path):
    path = Path(tmp_path / "big.xsl")
    path.write_text(IDENTITY + "<!--" + "x" * 500 + "-->")
    with pytest.raises(TransformError, match="max_bytes"):
        _step("xslt", {"stylesheet": str(path), "max_bytes": 200})


@pytest.mark.parametrize(
    "raw",
    [
        '<!DOCTYPE o [<!ENTITY a "aaaa">]><o>&a;</o>'.encode("utf-16"),  # no "<!" byte pair
        b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE o +AFs-+ADw-!ENTITY a +ACI-x+ACI-+AD4-'
        b"+AF0-+AD4-+ADw-o+AD4-+ACY-a;+ADw-/o+AD4-",  # "<!" and "&" written as UTF-7
    ],
)
def test_entities_hidden_by_an_encoding_are_refused(raw):
    """The byte-level shortcut (no "<!", no "&": nothing to look for) holds only for encodings
    that write those characters as themselves."""
    from meshline.transforms.xml import parse_xml

    with pytest.raises(TransformError, match="entities"):
        parse_xml(raw)
