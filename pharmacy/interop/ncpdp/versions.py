"""Which NCPDP SCRIPT version an inbound message declares, before any element is read.

SCRIPT versions announce themselves differently (public schemas and examples):

* **2017071** and later (2018xxx … **2023011**): no XML namespace; ``Message`` attributes
  ``TransactionVersion`` (and DatatypesVersion, TransportVersion, StructuresVersion, ECLVersion)
  carry the version, e.g. ``TransactionVersion="2017071"``.
* **2010–2016 XML versions** (2013071 among them): namespace
  ``http://www.ncpdp.org/schema/transport`` on ``Message``, with the same attributes.
* **10.6** and older: namespace ``http://www.ncpdp.org/schema/SCRIPT`` and attributes
  ``version="010" release="006"``.

:func:`detect` returns what was found; :func:`require_supported` raises a :class:`ScriptError`
saying which version was found and which ones this receiver supports — instead of a misleading
element error further in.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .common import ERROR_UNABLE_TO_PROCESS, ScriptError

NS_TRANSPORT = "http://www.ncpdp.org/schema/transport"
NS_SCRIPT_10 = "http://www.ncpdp.org/schema/SCRIPT"
_VERSION = re.compile(r"^v?(\d{7})$")


@dataclass(frozen=True)
class Declared:
    version: str  # "2017071", "2013071", "10.6", "" when nothing is declared
    namespace: str  # the Message element's namespace, "" for none
    how: str  # where it was read, for the error text

    def describe(self) -> str:
        found = f"SCRIPT {self.version}" if self.version else "no SCRIPT version"
        return f"{found} ({self.how})"


def _attr(el: ET.Element, name: str) -> str:
    for key, value in el.attrib.items():
        if key.rsplit("}", 1)[-1] == name:
            return value.strip()
    return ""


def detect(root: ET.Element) -> Declared:
    tag = root.tag if isinstance(root.tag, str) else ""
    namespace = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
    tv = _attr(root, "TransactionVersion")
    m = _VERSION.match(tv)
    v, r = _attr(root, "version"), _attr(root, "release")
    if namespace == NS_SCRIPT_10 or (v and r) or re.fullmatch(r"\d+\.\d+", v):
        legacy = _VERSION.match(v)
        if legacy:  # a 2017071+ number under the 10.x namespace / attribute
            version = legacy.group(1)
        elif v.isdigit() and r.isdigit():
            version = f"{int(v)}.{int(r)}"
        else:
            version = v if re.fullmatch(r"\d+\.\d+", v) else "10.x"
        where = f"namespace {namespace}" if namespace else "no namespace"
        return Declared(version, namespace, f"{where}, version={v!r}" + (f" release={r!r}" if r else "")
                        )
    if namespace == NS_TRANSPORT:
        version = m.group(1) if m else "2010-2016 (namespaced)"
        return Declared(version, namespace, f"namespace {namespace}, TransactionVersion={tv!r}")
    if namespace:
        return Declared(m.group(1) if m else "", namespace, f"unknown namespace {namespace}")
    if m:
        return Declared(m.group(1), "", f"TransactionVersion={tv!r}, no namespace")
    legacy = _VERSION.match(v)
    if legacy and not tv:  # simplified senders write version="2017071" instead of TransactionVersion
        return Declared(legacy.group(1), "", f"version={v!r}, no namespace, no TransactionVersion")
    if tv:
        return Declared("", "", f"TransactionVersion={tv!r} is not a SCRIPT version")
    return Declared("", "", "Message has no TransactionVersion attribute")


def require_supported(root: ET.Element, supported: tuple[str, ...]) -> Declared:
    declared = detect(root)
    # The declared version decides; an NCPDP namespace on a supported version is tolerated (read by
    # local name, docs/standards.md), a foreign namespace is not.
    if declared.version not in supported or declared.namespace not in ("", NS_SCRIPT_10, NS_TRANSPORT):
        raise ScriptError(
            ERROR_UNABLE_TO_PROCESS,
            f"Message/@TransactionVersion: {declared.describe()} found; this receiver supports SCRIPT "
            f"{', '.join(supported)} (no namespace, TransactionVersion attribute)",
            element="Message/@TransactionVersion",
        )
    return declared
