"""Drug names as pharmacists and EHRs write them → one key: the name normaliser and the catalog
lookup, used everywhere a drug name is compared (reconciliation, allergy rule, catalog search).

"DOXYCYCLINE HYCLATE 100MG", "doxycycline hyclate 100 mg capsule" and "Doxycycline 100 mg cap" all
have the key "doxycycline" (salt forms, dose forms, release modifiers and strengths are dropped;
"/", "-" and "and" join combination ingredients), and strengths compare as "100 mg" (issue 11).
Salt and dose-form words: FDA/USP salt nomenclature (USP "Salt Policy"), NCI dose-form terms (SPL).

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
          "extended", "release", "delayed", "immediate",
          # more salt / hydrate forms (USP salt nomenclature)
          "hyclate", "monohydrate", "dihydrate", "trihydrate", "anhydrous", "hydrobromide", "bitartrate",
          "dipropionate", "propionate", "valerate", "furoate", "disodium", "medoxomil", "mononitrate",
          "axetil", "pivoxil", "hemihydrate", "decanoate", "hbr",
          # dose forms and routes (SPL dose-form terms)
          "cream", "ointment", "gel", "lotion", "patch", "inhaler", "inhalation", "aerosol", "spray", "nasal",
          "drops", "ophthalmic", "otic", "chewable", "odt", "disintegrating", "orally", "sublingual", "film",
          "powder", "elixir", "syrup", "liquid", "vial", "syringe", "topical", "transdermal", "suppository",
          "rectal", "vaginal", "pack", "kit", "packet", "softgel", "caplet", "by", "mouth", "po",
          "and", "with", "w"}
_STRENGTH_RE = re.compile(r"\d[\d.,/\-]*\s*(mg|mcg|g|ml|units?|iu|meq|%|mmol)?\b", re.I)


def normalise_name(name: str) -> str:
    """Lower-case ingredient words without strengths, dose forms and salt names."""
    text = _STRENGTH_RE.sub(" ", (name or "").lower())
    words = [w for w in re.split(r"[^a-z]+", text) if w and w not in _SALTS]
    return " ".join(words)


def normalise_strength(value: str) -> str:
    """"10MG", "10 mg", "10.0 mg tablet" → "10 mg"; "" when no number is present."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*(mg|mcg|g|ml|units?|iu|meq|%|mmol)?", (value or "").lower())
    if not m:
        return ""
    number = m.group(1).rstrip("0").rstrip(".") if "." in m.group(1) else m.group(1)
    unit = (m.group(2) or "").replace("units", "unit")
    return f"{number} {unit}".strip()


def name_strength(name: str) -> str:
    """The strength written inside a name ("DOXYCYCLINE HYCLATE 100MG" → "100 mg"), or ""."""
    return normalise_strength(name) if re.search(r"\d", name or "") else ""


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
        self.names: dict[str, list[str]] = {}  # key → the catalog's names for it ("doxycycline hyclate")
        for entry in entries:
            generic = normalise_name(entry.get("name") or "")
            if not generic:
                continue
            self.generic[generic] = generic
            if entry["name"] not in self.names.setdefault(generic, []):
                self.names[generic].append(entry["name"])
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

    def catalog_names(self, name: str, code: str = "") -> list[str]:
        """The catalog's own names for what a person wrote ("DOXYCYCLINE HYCLATE 100MG" →
        ["doxycycline hyclate"]); [] when the catalog does not know it."""
        return list(self.names.get(self.ingredient(name, code), []))

    def drug_class(self, ingredient: str) -> str:
        return self.classes.get(ingredient, "")


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog over the shipped drug list (pharmacy/data/drug_catalog.json), built once."""
    return Catalog(catalog_entries())
