"""Drug names → ingredients: the name normaliser and the catalog lookup (moved as they were from
reconciliation/compare.py so the allergy rule in the core can use them; engineer `newcomer`'s
drug-name normaliser replaces this module's internals, issue 11).

Pure: plain strings and catalog dicts in, strings out.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from pharmacy.catalog import catalog_entries

_SALTS = {"hydrochloride", "hcl", "sodium", "potassium", "calcium", "magnesium", "succinate", "tartrate",
          "besylate", "maleate", "mesylate", "fumarate", "sulfate", "citrate", "acetate", "phosphate",
          "bromide", "chloride", "er", "xr", "sr", "xl", "cr", "dr", "ec", "la", "oral", "tablet", "tablets",
          "tab", "tabs", "capsule", "capsules", "cap", "caps", "solution", "suspension", "injection", "pen",
          "extended", "release", "delayed", "immediate"}
_STRENGTH_RE = re.compile(r"\d[\d.,/\-]*\s*(mg|mcg|g|ml|units?|iu|meq|%|mmol)?\b", re.I)


def normalise_name(name: str) -> str:
    """Lower-case ingredient words without strengths, dose forms and salt names."""
    text = _STRENGTH_RE.sub(" ", (name or "").lower())
    words = [w for w in re.split(r"[^a-z]+", text) if w and w not in _SALTS]
    return " ".join(words)


def digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


class Catalog:
    """Name and code lookups over drug catalog rows (dicts with name, brand_names, rxcui, ndc,
    therapeutic_class, is_high_alert). Built by the caller; ``default_catalog`` uses the
    shipped catalog."""

    def __init__(self, entries: Iterable[dict]):
        self.generic: dict[str, str] = {}
        self.classes: dict[str, str] = {}
        self.high_alert: dict[str, bool] = {}
        self.by_code: dict[str, str] = {}
        for entry in entries:
            generic = normalise_name(entry.get("name") or "")
            if not generic:
                continue
            self.generic[generic] = generic
            for brand in entry.get("brand_names") or []:
                self.generic.setdefault(normalise_name(brand), generic)
            if entry.get("therapeutic_class"):
                self.classes.setdefault(generic, entry["therapeutic_class"])
            self.high_alert[generic] = self.high_alert.get(generic, False) or bool(entry.get("is_high_alert"))
            for code in (entry.get("rxcui"), digits(entry.get("ndc") or "")):
                if code:
                    self.by_code.setdefault(code, generic)

    def ingredient(self, name: str, code: str = "") -> str:
        if code and code in self.by_code:
            return self.by_code[code]
        norm = normalise_name(name)
        if norm in self.generic:
            return self.generic[norm]
        # "metoprolol succinate er" → try the longest known prefix of words, then any known word.
        words = norm.split()
        for size in range(len(words) - 1, 0, -1):
            head = " ".join(words[:size])
            if head in self.generic:
                return self.generic[head]
        return norm

    def drug_class(self, ingredient: str) -> str:
        return self.classes.get(ingredient, "")


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog over the shipped drug list (pharmacy/data/drug_catalog.json), built once."""
    return Catalog(catalog_entries())
