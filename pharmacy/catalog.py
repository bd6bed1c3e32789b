"""The shipped drug catalog (pharmacy/data/drug_catalog.json): loading and name lookup."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "drug_catalog.json"
CATALOG_FIELDS = ("name", "brand_names", "strength", "dose_form", "route", "ndc", "rxcui", "dea_schedule",
                  "therapeutic_class", "is_maintenance", "is_high_alert", "is_urgent", "species")


@lru_cache(maxsize=1)
def catalog_entries() -> tuple[dict, ...]:
    data = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return tuple({key: entry.get(key) for key in CATALOG_FIELDS} for entry in data["drugs"])


def catalog_source() -> str:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8")).get("source", "")


def drug_catalog_load(*, actor) -> tuple[int, int]:
    """Insert catalog drugs that are not in the database yet (by name+strength+form). Returns
    (created, already present). Existing rows are left alone: admins may have edited them."""
    from .actors import bulk_create_recorded
    from .models import Drug

    existing = set(Drug.objects.values_list("name", "strength", "dose_form"))
    new = []
    for entry in catalog_entries():
        key = (entry["name"], entry["strength"] or "", entry["dose_form"] or "")
        if key in existing:
            continue
        existing.add(key)
        fields = dict(entry)
        fields["ndc"] = fields.get("ndc") or None
        fields["brand_names"] = fields.get("brand_names") or []
        fields["rxcui"] = fields.get("rxcui") or ""
        new.append(Drug(**fields))
    bulk_create_recorded(Drug, new, actor=actor, reason="Loaded from the shipped drug catalog")
    return len(new), len(catalog_entries()) - len(new)
