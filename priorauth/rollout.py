"""Phased rollout per payer and drug/class (issue 8 §11). Pure.

* ``off`` — no draft; * ``shadow`` — draft made, hidden; agreement with the person's submission
  recorded; * ``assist`` — draft shown, a pharmacist approves; * ``auto`` — submitted without
  review only when every criterion is met, nothing is missing and the pair is configured for it.
"""

from __future__ import annotations

from difflib import SequenceMatcher


def auto_trace(
    *,
    mode: str,
    has_criteria: bool,
    criteria_result: dict,
    missing: list,
    letter: str,
    has_payer: bool,
    drafter: str = "template",
) -> tuple[bool, list[dict]]:
    """Whether to submit automatically, with the rule trace kept on the case."""
    items = criteria_result.get("items", [])
    rules = [
        ("Rollout mode for this payer and drug is auto", mode == "auto", f"mode {mode}"),
        (
            "Payer identified from the claim's BIN/PCN",
            has_payer,
            "payer known" if has_payer else "no payer row",
        ),
        (
            "Payer criteria configured for this drug or class",
            has_criteria,
            "criteria found" if has_criteria else "no criteria",
        ),
        (
            "Every criterion met",
            bool(items) and all(i["status"] == "met" for i in items),
            f"{sum(i['status'] == 'met' for i in items)} of {len(items)} met",
        ),
        ("Nothing missing", not missing, "; ".join(missing)[:300] or "nothing missing"),
        ("A letter was drafted", bool(letter.strip()), f"{len(letter)} characters"),
        # Issue 8 §4: a language model's output is always a draft for a person, never sent unread.
        ("Letter drafted by the deterministic template", drafter == "template", f"drafter {drafter or 'none'}"),
    ]
    trace = [{"rule": name, "passed": bool(ok), "detail": detail} for name, ok, detail in rules]
    return all(t["passed"] for t in trace), trace


def agreement(
    *, system_fields: dict, submitted_fields: dict, system_letter: str, submitted_letter: str
) -> dict:
    """How far the system's draft agreed with what a person submitted."""
    keys = sorted(set(system_fields) | set(submitted_fields))
    equal = [
        k for k in keys if str(system_fields.get(k, "")).strip() == str(submitted_fields.get(k, "")).strip()
    ]
    similarity = SequenceMatcher(None, system_letter or "", submitted_letter or "", autojunk=False).ratio()
    return {
        "fields_total": len(keys),
        "fields_equal": len(equal),
        "fields_differ": [k for k in keys if k not in equal],
        "field_agreement": round(len(equal) / len(keys), 3) if keys else None,
        "letter_similarity": round(similarity, 3),
    }
