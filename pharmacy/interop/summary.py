"""Per-file summaries of clinical payloads (used by ``manage.py inspect_clinical``).

Pure: no Django, no database. ``summarize_file`` reads one file with the matching reader and
returns a JSON-ready dict; ``format_summary`` renders that dict as the text a pharmacist reads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pharmacy.interop.clinical import ClinicalParseError, ClinicalRecord
from pharmacy.interop.detect import detect_format, read_clinical

__all__ = ["summarize_file", "summarize_records", "error_summary", "format_summary"]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _empty(path: str, fmt: str) -> dict:
    return {
        "file": path,
        "format": fmt,
        "ok": False,
        "error": None,
        "messages": 0,
        "message_type": "",
        "patient": None,
        "medications": [],
        "allergies": [],
        "no_known_allergies": False,
        "medications_unknown": False,
        "allergies_unknown": False,
        "problems": [],
        "lab_results": [],
        "warnings": [],
    }


def error_summary(path: str, error: str, fmt: str = "unknown") -> dict:
    """The summary of a file that could not be read."""
    out = _empty(path, fmt)
    out["error"] = error
    return out


def summarize_records(path: str, fmt: str, records: list[ClinicalRecord]) -> dict:
    """Merge the records read from one file (first patient, concatenated lists)."""
    out = _empty(path, fmt)
    out["ok"] = True
    out["messages"] = len(records)
    types: list[str] = []
    for record in records:
        if record.message_type and record.message_type not in types:
            types.append(record.message_type)
        if out["patient"] is None and record.patient is not None:
            p = record.patient
            out["patient"] = {
                "family": p.family,
                "given": p.given,
                "birth_date": _iso(p.birth_date),
                "sex": p.sex,
                "identifiers": [
                    {"value": i.value, "type": i.type, "assigning_authority": i.assigning_authority}
                    for i in p.identifiers
                ],
            }
        for m in record.medications:
            out["medications"].append(
                {
                    "text": m.text,
                    "name": m.name,
                    "code": m.code,
                    "code_system": m.code_system,
                    "strength": m.strength,
                    "dose": m.dose,
                    "route": m.route,
                    "frequency": m.frequency,
                    "as_needed": m.as_needed,
                    "status": m.status,
                    "negated": m.negated,
                    "start_date": _iso(m.start_date),
                    "end_date": _iso(m.end_date),
                    "quantity": m.quantity,
                    "days_supply": m.days_supply,
                    "refills": m.refills,
                    "prescriber": m.prescriber,
                    "sig": getattr(m, "sig", ""),
                    "source": m.source,
                }
            )
        for a in record.allergies:
            out["allergies"].append(
                {
                    "substance": a.substance,
                    "code": a.code,
                    "code_system": a.code_system,
                    "category": a.category,
                    "reaction": list(a.reaction),
                    "severity": a.severity,
                    "criticality": a.criticality,
                    "status": a.status,
                    "negated": a.negated,
                }
            )
        out["no_known_allergies"] = out["no_known_allergies"] or record.no_known_allergies
        out["medications_unknown"] = out["medications_unknown"] or record.medications_unknown
        out["allergies_unknown"] = out["allergies_unknown"] or record.allergies_unknown
        for pr in record.problems:
            out["problems"].append(
                {
                    "code": pr.code,
                    "code_system": pr.code_system,
                    "description": pr.description,
                    "onset": _iso(pr.onset),
                    "status": pr.status,
                }
            )
        for lab in record.lab_results:
            out["lab_results"].append(
                {
                    "code": lab.code,
                    "code_system": lab.code_system,
                    "name": lab.name,
                    "value": lab.value,
                    "unit": lab.unit,
                    "reference_range": lab.reference_range,
                    "abnormal_flag": lab.abnormal_flag,
                    "observed_at": _iso(lab.observed_at),
                }
            )
        out["warnings"].extend(record.warnings)
    out["message_type"] = ", ".join(types)
    return out


def summarize_file(path: str | Path) -> dict:
    """Read one file and summarise it; reader failures are reported in ``error``, never raised.

    Raises ``FileNotFoundError`` when ``path`` does not exist.
    """
    p = Path(path)
    data = p.read_bytes()  # FileNotFoundError / IsADirectoryError propagate to the caller
    fmt = detect_format(data)
    try:
        fmt, records = read_clinical(data)
    except ClinicalParseError as exc:
        return error_summary(str(path), str(exc), fmt)
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop a batch inspection
        message = f"internal error in the {fmt} reader: {type(exc).__name__}: {exc}"
        return error_summary(str(path), message, fmt)
    return summarize_records(str(path), fmt, records)


# --------------------------------------------------------------------------------------------
# Human-readable rendering
# --------------------------------------------------------------------------------------------


def _code(item: dict) -> str:
    if item.get("code"):
        return f" [{item.get('code_system') or 'code'} {item['code']}]"
    return ""


def format_summary(summary: dict) -> str:
    """The summary as plain text, one block per file."""
    lines: list[str] = []
    status = "OK" if summary["ok"] else "ERROR"
    kind = summary["format"] + (f" {summary['message_type']}" if summary.get("message_type") else "")
    count = f", {summary['messages']} messages" if summary.get("messages", 0) > 1 else ""
    lines.append(f"== {summary['file']}  [{kind}{count}]  {status}")
    if summary.get("error"):
        lines.append(f"  Error: {summary['error']}")
        return "\n".join(lines)
    p = summary.get("patient")
    if p:
        name = ", ".join(x for x in (p["family"], p["given"]) if x) or "(no name)"
        bits = [f"Patient: {name}"]
        if p.get("birth_date"):
            bits.append(f"DOB {p['birth_date']}")
        if p.get("sex"):
            bits.append(f"sex {p['sex']}")
        lines.append("  " + "  ".join(bits))
        for ident in p.get("identifiers", []):
            extra = ", ".join(x for x in (ident["type"], ident["assigning_authority"]) if x)
            lines.append(f"    id {ident['value']}" + (f" ({extra})" if extra else ""))
    else:
        lines.append("  Patient: (none in this file)")
    meds = summary.get("medications", [])
    lines.append(f"  Medications ({len(meds)}):" if meds else "  Medications: NO INFORMATION (unknown)"
                 if summary.get("medications_unknown") else "  Medications: none listed")
    for m in meds:
        label = m["name"] or m["text"] or "(unnamed)"
        if m["text"] and m["name"] and m["text"].lower() != m["name"].lower():
            label += f" — \"{m['text']}\""
        prefix = "NOT TAKEN/REFUSED: " if m.get("negated") else ""
        details = [x for x in (m["strength"], m.get("dose"), m["route"], m["frequency"]) if x]
        if m.get("as_needed"):
            details.append("PRN")
        if m["status"]:
            details.append(m["status"])
        lines.append(f"    - {prefix}{label}{_code(m)}" + (f": {'; '.join(details)}" if details else ""))
        supply = []
        if m.get("quantity"):
            supply.append(f"qty {m['quantity']}")
        if m.get("days_supply") is not None:
            supply.append(f"{m['days_supply']} days")
        if m.get("refills") is not None:
            supply.append(f"{m['refills']} refills")
        if m.get("prescriber"):
            supply.append(f"by {m['prescriber']}")
        if m.get("start_date"):
            supply.append(f"from {m['start_date']}" + (f" to {m['end_date']}" if m.get("end_date") else ""))
        if supply:
            lines.append(f"        {', '.join(supply)}")
        if m.get("sig") and m["sig"] != m["text"]:
            lines.append(f"        sig: {m['sig']}")
    allergies = summary.get("allergies", [])
    if summary.get("no_known_allergies"):
        lines.append("  Allergies: NO KNOWN ALLERGIES stated")
    if allergies:
        lines.append(f"  Allergies ({len(allergies)}):")
    elif summary.get("allergies_unknown"):
        lines.append("  Allergies: NO INFORMATION (unknown, not NKA)")
    elif not summary.get("no_known_allergies"):
        lines.append("  Allergies: none listed (not stated as NKA)")
    for a in allergies:
        prefix = "NOT allergic to: " if a.get("negated") else ""
        details = []
        if a["reaction"]:
            details.append("reaction " + ", ".join(a["reaction"]))
        if a["severity"]:
            details.append(f"severity {a['severity']}")
        if a.get("criticality"):
            details.append(f"criticality {a['criticality']}")
        if a.get("category"):
            details.append(a["category"])
        if a.get("status"):
            details.append(a["status"])
        lines.append(f"    - {prefix}{a['substance'] or '(unnamed)'}{_code(a)}"
                     + (f": {'; '.join(details)}" if details else ""))
    problems = summary.get("problems", [])
    if problems:
        lines.append(f"  Problems ({len(problems)}):")
        for pr in problems:
            status = f" ({pr['status']})" if pr.get("status") else ""
            lines.append(f"    - {pr['description'] or '(no description)'}{_code(pr)}{status}")
    labs = summary.get("lab_results", [])
    if labs:
        lines.append(f"  Lab results ({len(labs)}):")
        for lab in labs:
            value = " ".join(x for x in (lab["value"], lab["unit"]) if x) or "(no value)"
            flag = f" [{lab['abnormal_flag']}]" if lab.get("abnormal_flag") else ""
            ref = f" (ref {lab['reference_range']})" if lab.get("reference_range") else ""
            when = f" on {lab['observed_at'][:10]}" if lab.get("observed_at") else ""
            lines.append(f"    - {lab['name'] or lab['code']}{_code(lab)}: {value}{flag}{ref}{when}")
    for warning in summary.get("warnings", []):
        lines.append(f"  Note: {warning}")
    return "\n".join(lines)
