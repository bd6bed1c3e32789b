"""Import payer criteria from CSV or JSON. Every row is checked first; one bad row means nothing
is written (DESIGN.md: untrusted input gets a clear error naming the field and no partial write).

Columns / keys: payer_name, bin, pcn, drug_name, therapeutic_class, benefit, diagnosis_prefixes,
expedited_diagnosis_prefixes (CSV: separated by ``;``), step_therapy, required_labs (CSV: JSON
text), max_quantity, quantity_period_days, rollout_mode, source.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from pharmacy.actors import Actor, save_with_history

from .models import Payer, PayerCriteria

MAX_BYTES = 2 * 1024 * 1024
LIST_FIELDS = ("diagnosis_prefixes", "expedited_diagnosis_prefixes")
JSON_FIELDS = ("step_therapy", "required_labs")
CRITERIA_FIELDS = (
    "drug_name",
    "therapeutic_class",
    "benefit",
    *LIST_FIELDS,
    *JSON_FIELDS,
    "max_quantity",
    "quantity_period_days",
    "rollout_mode",
    "source",
)


@dataclass
class ImportResult:
    rows: int
    created: int = 0
    updated: int = 0
    errors: list[str] | None = None


def read_rows(text: str, fmt: str) -> list[dict]:
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"File larger than {MAX_BYTES // 1024} KB.")
    if fmt == "json":
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("criteria", [])
        if not isinstance(data, list):
            raise ValueError('JSON must be a list of rows (or {"criteria": [...]}).')
        return data
    return list(csv.DictReader(io.StringIO(text)))


def _coerce(raw: dict) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    row = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
    for name in LIST_FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = [p.strip() for p in value.split(";") if p.strip()]
        elif value is None:
            row[name] = []
    for name in JSON_FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            try:
                row[name] = json.loads(value) if value else []
            except ValueError as exc:
                errors[name] = f"Not valid JSON ({exc.msg})."
                row[name] = []
        elif value is None:
            row[name] = []
    for name in ("max_quantity", "quantity_period_days"):
        if row.get(name) in ("", None):
            row[name] = None
    if row.get("quantity_period_days") is not None:
        try:
            row["quantity_period_days"] = int(row["quantity_period_days"])
        except (TypeError, ValueError):
            errors["quantity_period_days"] = "Must be a whole number of days."
            row["quantity_period_days"] = None
    for name in ("pcn", "drug_name", "therapeutic_class", "source"):
        row[name] = row.get(name) or ""
    row["benefit"] = row.get("benefit") or "pharmacy"
    row["rollout_mode"] = row.get("rollout_mode") or "shadow"
    return row, errors


def import_criteria(rows: list[dict], *, actor: Actor, dry_run: bool = False) -> ImportResult:
    result = ImportResult(rows=len(rows), errors=[])
    prepared = []
    for number, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict):
            result.errors.append(f"row {number}: not an object")
            continue
        row, errors = _coerce(raw)
        if not row.get("payer_name"):
            errors["payer_name"] = "Required."
        payer = Payer(name=row.get("payer_name") or "?", bin=row.get("bin") or "", pcn=row["pcn"])
        try:
            payer.full_clean(
                exclude=["name"] if "payer_name" in errors else None,
                validate_unique=False,
                validate_constraints=False,
            )
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
        values = {k: row.get(k) for k in CRITERIA_FIELDS}
        criteria = PayerCriteria(payer=payer, **values)
        try:
            criteria.full_clean(exclude=["payer"], validate_constraints=False)
        except ValidationError as exc:
            for k, v in exc.message_dict.items():
                errors.setdefault(k, v[0])
        if errors:
            result.errors.extend(f"row {number}: {k}: {v}" for k, v in sorted(errors.items()))
            continue
        prepared.append((row, values))
    if result.errors or dry_run:
        return result
    with transaction.atomic():
        for row, values in prepared:
            payer = Payer.objects.filter(bin=row["bin"], pcn=row["pcn"]).first()
            if payer is None:
                payer = save_with_history(
                    Payer(name=row["payer_name"], bin=row["bin"], pcn=row["pcn"]),
                    actor=actor,
                    reason="Imported with payer criteria",
                )
            existing = PayerCriteria.objects.filter(
                payer=payer,
                drug_name__iexact=values["drug_name"],
                therapeutic_class=values["therapeutic_class"],
            ).first()
            if existing is None:
                save_with_history(
                    PayerCriteria(payer=payer, **values), actor=actor, reason="Imported criteria"
                )
                result.created += 1
            else:
                for k, v in values.items():
                    setattr(existing, k, v)
                save_with_history(existing, actor=actor, reason="Criteria updated by import")
                result.updated += 1
    return result
