"""Validation seam: check a message against a member's copy of the official NCPDP XSDs.

The XSDs are NCPDP copyrighted member material and are never in this repository. When the core
hands this module a folder holding the 2017071 schema set (entry point ``transport.xsd``) through
:func:`configure`, every message this package builds or receives is validated with lxml; the
compiled schema is kept for the life of the process (one compile per directory).

* :func:`configure` — the folder to validate against ("" = off). Called by
  ``PharmacyConfig.ready()`` with ``settings.RXHUB["NCPDP_XSD_DIR"]`` (read once from the
  ``NCPDP_XSD_DIR`` environment variable in pharmacy/settings.py) and again when a test overrides
  ``RXHUB``; this module reads neither settings nor the environment (pure).
* :func:`validate_against_xsd` — the errors for one document ([] = valid), or None when no schema
  is configured (*not checked*).
* :func:`check_built` — raise :class:`SchemaInvalid` for a message we built that the schema
  refuses (a bug of ours: better an exception in the service than a message the partner rejects).
"""
from __future__ import annotations

import re
import threading
from os import PathLike
from pathlib import Path

_lock = threading.Lock()
_compiled: dict[str, object] = {}
_configured = ""


class SchemaInvalid(ValueError):
    """A message we built is not valid against the configured XSDs."""

    def __init__(self, transaction: str, errors: list[str]):
        super().__init__(f"{transaction} is not valid against the NCPDP XSDs: {'; '.join(errors[:5])}")
        self.transaction = transaction
        self.errors = errors


def configure(xsd_dir: str | PathLike[str] | None) -> str:
    """Validate against the XSDs in ``xsd_dir`` from now on ("" or None: no validation). Returns
    the folder configured before, so a caller can put it back."""
    global _configured
    previous, _configured = _configured, str(xsd_dir or "").strip()
    return previous


def configured_dir() -> str:
    return _configured


def _entry(xsd_dir: str | PathLike[str]) -> Path | None:
    path = Path(xsd_dir)
    if path.is_dir():
        entries = [p for p in path.iterdir() if p.name.lower() == "transport.xsd"]
        return entries[0] if entries else None
    return path if path.is_file() else None


def _schema(entry: Path):
    key = str(entry.resolve())
    with _lock:
        schema = _compiled.get(key)
        if schema is None:
            from lxml import etree as lxml_etree

            parser = lxml_etree.XMLParser(resolve_entities=False, no_network=True)
            schema = lxml_etree.XMLSchema(lxml_etree.parse(str(entry), parser))
            _compiled[key] = schema
        return schema


def compile_count() -> int:
    """How many schema sets this process compiled (tests: once per directory)."""
    return len(_compiled)


def validate_against_xsd(xml: bytes | str, xsd_dir: str | PathLike[str] | None = None) -> list[str] | None:
    """Errors of ``xml`` against the XSDs in ``xsd_dir`` (default: the folder given to :func:`configure`); [] when
    valid; None when no schema is configured or the folder holds no ``transport.xsd``. The
    document is parsed without DTDs, entity expansion or network access."""
    xsd_dir = configured_dir() if xsd_dir is None else xsd_dir
    if not xsd_dir:
        return None
    entry = _entry(xsd_dir)
    if entry is None:
        return None
    from lxml import etree as lxml_etree

    schema = _schema(entry)
    parser = lxml_etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    if isinstance(xml, str):  # re-encode as UTF-8 and drop a declaration naming another encoding
        data = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", xml.lstrip("\ufeff").encode("utf-8"))
    else:
        data = xml
    try:
        doc = lxml_etree.fromstring(data, parser)
    except lxml_etree.XMLSyntaxError as exc:
        return [f"not well-formed: {exc}"]
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def check_built(xml: str, transaction: str) -> str:
    """``xml`` unchanged when valid or when no schema is configured; else :class:`SchemaInvalid`."""
    errors = validate_against_xsd(xml)
    if errors:
        raise SchemaInvalid(transaction, errors)
    return xml
