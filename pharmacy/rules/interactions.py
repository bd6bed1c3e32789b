"""Drug–drug interaction screening on approval (drug utilization review), one pure rule.

Source (docs/standards.md "Who may authorize what", DUR): the ONC high-priority drug–drug
interaction list — Phansalkar S et al., "High-priority drug–drug interactions for use in electronic
health records", J Am Med Inform Assoc 2012;19(5):735–743 — 15 pairs that should always alert,
shipped as data with its citation in pharmacy/data/onc_high_priority_ddi.json (read from the
paper's Table 2, PMC3422823). A side whose membership is not in the data yet matches nothing.

Pure: drug names in, findings out; no Django, no ORM. Names are compared as normalised ingredient
words (pharmacy/rules/drug_names.py), so "Omeprazole 20 mg DR capsule" is omeprazole.
Therapeutic duplication (two active prescriptions in the same class) stays where it is, in the
refill protocol (refills/services/protocol_rules.py ``_with_duplication``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .drug_names import normalise_name

DATA = Path(__file__).resolve().parent.parent / "data" / "onc_high_priority_ddi.json"
CODE = "drug_interaction"


@dataclass(frozen=True)
class Side:
    label: str
    ingredients: tuple[str, ...]

    def matches(self, drug_name: str) -> str:
        """The listed ingredient this drug is, or ""."""
        words = set(normalise_name(drug_name).split())
        for ingredient in self.ingredients:
            if words and set(ingredient.split()) <= words:
                return ingredient
        return ""


@dataclass(frozen=True)
class Pair:
    id: int
    object: Side
    precipitant: Side
    severity: str


@dataclass(frozen=True)
class Interaction:
    pair_id: int
    drug: str  # the drug being approved, as named
    other: str  # the other active drug, as named
    severity: str
    message: str
    citation: str

    def as_json(self) -> dict:
        return {"code": CODE, "pair": self.pair_id, "drug": self.drug, "other": self.other,
                "severity": self.severity, "message": self.message, "citation": self.citation}


@dataclass(frozen=True)
class InteractionTable:
    pairs: tuple[Pair, ...]
    citation: str


def _side(raw: dict) -> Side:
    return Side(raw["label"], tuple(normalise_name(i) for i in raw["ingredients"]))


@cache
def onc_high_priority() -> InteractionTable:
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    pairs = tuple(Pair(p["id"], _side(p["object"]), _side(p["precipitant"]), p["severity"]) for p in raw["pairs"])
    return InteractionTable(pairs, raw["citation"])


def interactions(drug_name: str, other_drug_names: Iterable[str],
                 table: InteractionTable | None = None) -> list[Interaction]:
    """Every listed pair the drug forms with one of the other active drugs (either direction)."""
    table = table or onc_high_priority()
    short = "ONC high-priority DDI list (Phansalkar et al., JAMIA 2012;19:735–743)"
    found: list[Interaction] = []
    for other in other_drug_names:
        for pair in table.pairs:
            for mine, theirs in ((pair.object, pair.precipitant), (pair.precipitant, pair.object)):
                a, b = mine.matches(drug_name), theirs.matches(other)
                if a and b and a != b:
                    found.append(Interaction(
                        pair.id, drug_name, other, pair.severity,
                        f"High-priority interaction: {drug_name} ({mine.label}) with {other} ({theirs.label}) — "
                        f"should not be used together.", short))
                    break
    return found
