"""Safe reading and writing of WeChat's flat `<xml>` documents (no DTDs, no entities, CDATA done right)."""

from __future__ import annotations

import re
from typing import Dict, Mapping, Union
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from bot.wechat.errors import MalformedMessage

__all__ = ["MAX_BODY_BYTES", "parse_xml", "to_xml"]

# WeChat pushes a few hundred bytes per message; anything near this is not from WeChat.
MAX_BODY_BYTES = 256 * 1024

_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Characters XML 1.0 cannot carry at all, not even inside CDATA.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_xml(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> Dict[str, str]:
    """The text of each child of the root `<xml>` element; anything unsafe or malformed raises MalformedMessage."""
    if len(body) > max_bytes:
        raise MalformedMessage(f"body larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        # forbid_dtd refuses any DOCTYPE before expat sees an entity, so neither an external
        # entity (XXE) nor an expansion bomb is ever resolved.
        root = SafeElementTree.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedMessage(f"forbidden XML construct: {type(exc).__name__}") from None
    except ParseError as exc:
        raise MalformedMessage(f"malformed XML: {exc}") from None
    if root.tag != "xml":
        raise MalformedMessage(f"root element is <{str(root.tag)[:40]}>, not <xml>")
    fields: Dict[str, str] = {}
    for child in root:
        tag = child.tag
        if not isinstance(tag, str):  # comments and processing instructions
            continue
        if tag in fields:
            # Two FromUserName elements could make different readers see different senders.
            raise MalformedMessage(f"element <{tag}> appears twice", field=tag)
        fields[tag] = child.text or ""
    return fields


def _cdata(value: str) -> str:
    clean = _NOT_XML_CHAR.sub("", value)
    # "]]>" would close the section early: end it after "]]" and open a new one for ">".
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(fields: Mapping[str, Union[str, int]]) -> str:
    """Render a flat `<xml>` document: integers bare, strings in CDATA (characters XML cannot carry are dropped)."""
    parts = ["<xml>"]
    for tag, value in fields.items():
        if not _TAG.match(tag):
            raise ValueError(f"not a plain element name: {tag!r}")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"<{tag}> must be str or int, got {type(value).__name__}")
        body = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{tag}>{body}</{tag}>")
    parts.append("</xml>")
    return "".join(parts)
