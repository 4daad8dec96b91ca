"""SOAP 1.1 envelopes over lxml, for adapters whose hot path does not go through zeep.

zeep loads and checks the WSDL at start-up (the contract); per call, building the envelope
from a template and reading the answer with lxml costs a fraction of zeep's per-call object
model (measured in bench/: README, Benchmark). Parsing is hardened: no entity resolution,
no network, no huge trees, so XXE and entity-expansion payloads are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_BODY = f"{{{SOAP_ENV}}}Body"
_FAULT = f"{{{SOAP_ENV}}}Fault"

#: Upstream answers larger than this are refused before parsing.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024


def safe_parser() -> etree.XMLParser:
    """An lxml parser that never resolves entities, reads DTDs or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_blank_text=True,
    )


_PARSER = safe_parser()


class SoapFault(Exception):
    """A SOAP fault from upstream. `faultstring` may hold personal data: log it, never show it."""

    def __init__(self, faultcode: str, faultstring: str, detail: etree._Element | None) -> None:
        super().__init__(faultcode)
        self.faultcode, self.faultstring, self.detail = faultcode, faultstring, detail

    def detail_text(self, path: str, namespaces: dict[str, str]) -> str | None:
        """Text at an XPath inside the fault's detail, if any."""
        if self.detail is None:
            return None
        found = self.detail.xpath(path, namespaces=namespaces)
        if not found:
            return None
        node = found[0]
        return (node.text if isinstance(node, etree._Element) else str(node)) or None


def element(tag: str, value: str | None) -> str:
    """`<tag>escaped value</tag>` (empty element for None)."""
    return f"<{tag}/>" if value is None else f"<{tag}>{escape(value)}</{tag}>"


def envelope(body: str, namespaces: dict[str, str]) -> bytes:
    """A SOAP 1.1 envelope around an already-escaped body fragment."""
    decls = "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in namespaces.items())
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"{decls}>'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def declares_dtd(content: bytes) -> bool:
    """Whether a document's prolog holds a `<!DOCTYPE` (comments and PIs before it skipped).

    A cheap scan, so that a DTD is refused before any parser reads its entities; text after
    the root element starts (a CDATA section quoting a DOCTYPE, say) does not count. It reads
    ASCII-compatible encodings only: the check after parsing catches the rest.
    """
    if b"<!DOCTYPE" not in content:
        return False
    pos = 0
    while (start := content.find(b"<", pos)) != -1:
        if content.startswith(b"<!DOCTYPE", start):
            return True
        if content.startswith(b"<?", start):
            end, close = content.find(b"?>", start + 2), 2
        elif content.startswith(b"<!--", start):
            end, close = content.find(b"-->", start + 4), 3
        else:
            return False  # the root element: the prolog is over
        if end == -1:
            return False  # unterminated: the parser refuses it
        pos = end + close
    return False


@dataclass(frozen=True, slots=True)
class SoapResponse:
    """The first child of a SOAP Body."""

    payload: etree._Element


def parse_response(content: bytes) -> SoapResponse:
    """Parse an envelope; raise SoapFault for a fault, lxml errors for bad XML.

    Raises etree.XMLSyntaxError (translated by the core to 502 UPSTREAM_BAD_RESPONSE) for
    anything that is not a well-formed SOAP envelope, including entity tricks.
    """
    if len(content) > MAX_RESPONSE_BYTES:
        raise etree.XMLSyntaxError("response too large", None, 0, 0)  # type: ignore[call-arg]
    if declares_dtd(content):
        # SOAP forbids a DTD: refused before libxml2 reads one, whatever its own limits.
        raise etree.XMLSyntaxError("a DTD in a SOAP message is not allowed", None, 0, 0)  # type: ignore[call-arg]
    root = etree.fromstring(content, _PARSER)
    if root.getroottree().docinfo.internalDTD is not None:  # one the scan missed (UTF-16)
        raise etree.XMLSyntaxError("a DTD in a SOAP message is not allowed", None, 0, 0)  # type: ignore[call-arg]
    body = root.find(_BODY)
    if body is None or len(body) == 0:
        raise etree.XMLSyntaxError("no SOAP Body", None, 0, 0)  # type: ignore[call-arg]
    first = body[0]
    if first.tag == _FAULT:
        raise SoapFault(
            faultcode=(first.findtext("faultcode") or "").strip(),
            faultstring=(first.findtext("faultstring") or "").strip(),
            detail=first.find("detail"),
        )
    return SoapResponse(first)
