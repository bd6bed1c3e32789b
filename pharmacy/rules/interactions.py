"""Drug–drug interaction screening on approval (drug utilization review), one pure rule.

Source (docs/standards.md "Who may authorize what", DUR): the ONC high-priority drug–drug
interaction list — Phansalkar S et al., "High-priority drug–drug interactions for use in electronic
health records", J Am Med Inform Assoc 2012;19(5):735–743 (Table 2, PMC3422823) — 15 pairs that
should always alert, shipped as data in pharmacy/data/onc_high_priority_ddi.json. Each pair's drug
members are read from the dbmi-pitt/public-PDDI-analysis "ONC High Priority List.xls" (sheet
"Table 2"; the QT pair from the CredibleMeds known-TdP list the same repository uses), with the sheet
and rows noted per pair (``source``, ``paper_row``).

Warfarin + NSAIDs is not one of the paper's 15 pairs: it is shipped in the same file's
``other_high_severity`` section, cited to the HL7 FHIR PDDI CDS implementation guide (its worked
example, value sets "Warfarins" and "NSAIDs").

Pure: drug names in, findings out; no Django, no ORM. A name is resolved to ingredient words by the
core normaliser (pharmacy/rules/drug_names.py: salts, strengths and dose forms dropped; catalog
brand names → ingredient, e.g. "Zocor" → simvastatin) and by the brand names the source lists (the
CredibleMeds file), so "Omeprazole 20 mg DR capsule", "Prilosec" and "omeprazole magnesium" are all
omeprazole. Therapeutic duplication (two active prescriptions in the same class) stays in the
refill protocol (refills/services/protocol_rules.py ``_with_duplication``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .drug_names import Catalog, default_catalog, normalise_name

DATA = Path(__file__).resolve().parent.parent / "data" / "onc_high_priority_ddi.json"
CODE = "drug_interaction"
ONC_SHORT = "ONC high-priority DDI list (Phansalkar et al., JAMIA 2012;19:735–743)"
HL7_SHORT = "HL7 FHIR PDDI CDS implementation guide (Warfarin + NSAIDs)"


@dataclass(frozen=True)
class Side:
    label: str
    ingredients: tuple[str, ...]

    def matches(self, words: frozenset[str]) -> str:
        """The listed ingredient these ingredient words contain, or ""."""
        for ingredient in self.ingredients:
            if words and set(ingredient.split()) <= words:
                return ingredient
        return ""


@dataclass(frozen=True)
class Pair:
    id: int | str
    object: Side
    precipitant: Side
    severity: str
    citation: str = ONC_SHORT
    source: str = ""


@dataclass(frozen=True)
class Interaction:
    pair_id: int | str
    drug: str  # the drug being approved, as named
    other: str  # the other active drug, as named
    severity: str
    message: str
    citation: str
    source: str = ""

    def as_json(self) -> dict:
        return {"code": CODE, "pair": self.pair_id, "drug": self.drug, "other": self.other,
                "severity": self.severity, "message": self.message, "citation": self.citation}


@dataclass(frozen=True)
class InteractionTable:
    pairs: tuple[Pair, ...]
    citation: str
    brands: tuple[tuple[str, str], ...] = ()  # (normalised brand, ingredient) read from the source


def _side(raw: dict) -> Side:
    return Side(raw["label"], tuple(normalise_name(i) for i in raw["ingredients"]))


def _pair(raw: dict, citation: str) -> Pair:
    return Pair(raw["id"], _side(raw["object"]), _side(raw["precipitant"]), raw["severity"], citation,
                raw.get("source", ""))


@cache
def onc_high_priority() -> InteractionTable:
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    pairs = [_pair(p, ONC_SHORT) for p in raw["pairs"]]
    pairs += [_pair(p, HL7_SHORT) for p in raw.get("other_high_severity", {}).get("pairs", [])]
    brands = {}
    for p in raw["pairs"] + raw.get("other_high_severity", {}).get("pairs", []):
        for ingredient, names in (p.get("brand_names") or {}).items():
            for name in names:
                brands.setdefault(normalise_name(name), normalise_name(ingredient))
    return InteractionTable(tuple(pairs), raw["citation"], tuple(sorted(brands.items())))


def ingredient_words(drug_name: str, table: InteractionTable | None = None,
                     catalog: Catalog | None = None) -> frozenset[str]:
    """The ingredient words a drug name stands for: its normalised words, the catalog's ingredient
    for it (brand → generic) and the source's brand names."""
    table = table or onc_high_priority()
    catalog = catalog or default_catalog()
    norm = normalise_name(drug_name)
    words = set(norm.split()) | set(catalog.ingredient(drug_name).split())
    brands = dict(table.brands)
    for word in list(words) + [norm]:
        if word in brands:
            words |= set(brands[word].split())
    return frozenset(words)


def interactions(drug_name: str, other_drug_names: Iterable[str],
                 table: InteractionTable | None = None, catalog: Catalog | None = None) -> list[Interaction]:
    """Every listed pair the drug forms with one of the other active drugs (either direction)."""
    table = table or onc_high_priority()
    mine_words = ingredient_words(drug_name, table, catalog)
    found: list[Interaction] = []
    for other in other_drug_names:
        theirs_words = ingredient_words(other, table, catalog)
        for pair in table.pairs:
            for mine, theirs in ((pair.object, pair.precipitant), (pair.precipitant, pair.object)):
                a, b = mine.matches(mine_words), theirs.matches(theirs_words)
                if a and b and a != b:
                    found.append(Interaction(
                        pair.id, drug_name, other, pair.severity,
                        f"High-priority interaction: {drug_name} ({mine.label}) with {other} ({theirs.label}) — "
                        f"should not be used together.", pair.citation, pair.source))
                    break
    return found
