"""The shipped starting refill-protocol rule set, as data a practice edits (STANDARDS "Refill
protocol defaults"). Pure: no Django. The lead loads ``DEFAULT_PROTOCOL_RULES`` into database rows;
``build_default_rules()`` turns the same data into ``ProtocolRule`` objects for tests and previews.

Each rule is one dict with the ``ProtocolRule`` field names (lists instead of tuples, labs as dicts
``{"name", "loinc_codes", "max_age_months"}``) plus ``source`` (citation) and ``notes``.
Order matters: ``select_rule`` takes the first match, so drug-specific rules (``drug_names``)
come before the class-wide ones they overlap (metformin before diabetes drugs, lithium before
other mood stabilizers). Every rule ships in mode "shadow": it records what it would decide and a
person still decides, until the practice switches it to "assist" or "auto".

Lab codes (LOINC); a requirement is met by a result with any of its codes:
- potassium 2823-3 (serum/plasma), 6298-4 (blood); creatinine 2160-0 (serum/plasma), 38483-4 (blood)
- eGFR 33914-3 (MDRD), 48642-3 (MDRD, non-Black), 62238-1 (CKD-EPI), 98979-8 (CKD-EPI 2021)
- HbA1c 4548-4, 17856-6 (HPLC); TSH 3016-3, 11580-8 (detection limit ≤ 0.005 mIU/L)
- lipids: 2093-3 total cholesterol, 13457-7 LDL (calculated), 2089-1 LDL, 57698-3 lipid panel
- ALT 1742-6, AST 1920-8, hepatic function panel 24325-3, CMP 24323-8, ALP 6768-6
- levels: carbamazepine 3432-2, phenytoin 3968-5, valproate 4086-5, lithium 14334-7,
  phenobarbital 3948-7 (serum/plasma);
  CBC 58410-2 (panel), 6690-2 (WBC); BUN 3094-0;
  fructosamine 15069-8; glucose 2345-7 (serum/plasma, the points of a glucose curve)
"""
from __future__ import annotations

import copy
from typing import Any

from .protocol import ProtocolRule, rule_from_dict

DEFAULT_MODE = "shadow"
ISMP_AED_NOTE = (
    "ISMP (2021) lists carbamazepine, phenytoin and valproic acid as high-alert: with allow_high_alert "
    "off requests go to a person; the trace still shows whether level, CBC and CMP are current."
)

CMS_F757 = "CMS State Operations Manual Appendix PP, F757 (unnecessary drugs: adequate monitoring)"
TIJA_2010 = "Tija J et al. Am J Manag Care 2010;16(7):489–496 (monitoring of high-risk medications)"
HUMAN_SOURCE = f"{CMS_F757}; {TIJA_2010}"
AVMA_VCPR = "AVMA: veterinarian–client–patient relationship (exam within 12 months in most states)"
AMBULATORY_PROTOCOLS = (
    "Published ambulatory renewal protocols (office visit within 12 months, 18 for low-risk classes)"
)

# LOINC code groups.
POTASSIUM = ["2823-3", "6298-4"]
CREATININE = ["2160-0", "38483-4"]
EGFR = ["33914-3", "48642-3", "62238-1", "98979-8"]
HBA1C = ["4548-4", "17856-6"]
TSH = ["3016-3", "11580-8"]
LIPIDS = ["2093-3", "13457-7", "2089-1", "57698-3"]
LIVER_ENZYMES = ["1742-6", "1920-8", "24325-3", "24323-8"]  # ALT, AST, hepatic panel, CMP
CBC = ["58410-2", "6690-2"]
CMP = ["24323-8"]
CARBAMAZEPINE_LEVEL = ["3432-2"]
PHENYTOIN_LEVEL = ["3968-5"]
VALPROATE_LEVEL = ["4086-5"]
LITHIUM_LEVEL = ["14334-7"]
ALT = ["1742-6"]
BUN_OR_CREATININE = ["3094-0", "2160-0"]
PHENOBARBITAL_LEVEL = ["3948-7"]
VET_LIVER_VALUES = ["1742-6", "6768-6"]  # ALT, ALP
FRUCTOSAMINE_OR_GLUCOSE_CURVE = ["15069-8", "2345-7"]

DIABETES_CLASSES = [
    "biguanide", "sulfonylurea", "thiazolidinedione", "dpp4_inhibitor", "sglt2_inhibitor", "glp1_agonist",
    "insulin",
]


def _lab(name: str, codes: list[str], months: int) -> dict[str, Any]:
    return {"name": name, "loinc_codes": list(codes), "max_age_months": months}


def _rule(name: str, *, classes: list[str], labs: list[dict[str, Any]], source: str,
          drug_names: list[str] | None = None, species: str = "human", visit_months: int = 12,
          notes: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "mode": DEFAULT_MODE,
        "therapeutic_classes": list(classes),
        "drug_names": list(drug_names or []),
        "species": species,
        "require_maintenance": True,
        "allow_controlled": False,
        "allow_high_alert": False,
        "max_months_since_visit": visit_months,
        "required_labs": labs,
        "check_allergy_conflict": True,
        "check_too_soon": True,
        "min_therapy_months": 6,
        "bridge_days": 30,
        "source": source,
        "notes": notes,
    }


DEFAULT_PROTOCOL_RULES: list[dict[str, Any]] = [
    # --- Human, drug-specific rules first -------------------------------------------------------
    _rule(
        "Spironolactone — potassium and creatinine every 6 months",
        classes=["potassium_sparing_diuretic"], drug_names=["spironolactone"],
        labs=[_lab("Potassium", POTASSIUM, 6), _lab("Creatinine", CREATININE, 6)],
        source=HUMAN_SOURCE,
        notes="Sources say every 3–6 months; 6 months is the upper bound, shorten it if preferred.",
    ),
    _rule(
        "Metformin — creatinine/eGFR yearly, HbA1c every 6 months",
        classes=["biguanide"], drug_names=["metformin"],
        labs=[_lab("Creatinine or eGFR", CREATININE + EGFR, 12), _lab("HbA1c", HBA1C, 6)],
        source=HUMAN_SOURCE,
        notes="Also carries the diabetes HbA1c check, because only the first matching rule applies. "
              "HbA1c every 3 months when above goal is a clinical judgement left to the reviewer.",
    ),
    _rule(
        "Amiodarone — liver enzymes and TSH every 6 months",
        classes=["antiarrhythmic"], drug_names=["amiodarone"],
        labs=[_lab("Liver enzymes (ALT/AST)", LIVER_ENZYMES, 6), _lab("TSH", TSH, 6)],
        source=HUMAN_SOURCE,
    ),
    _rule(
        "Lithium — lithium level, creatinine and TSH every 6 months",
        classes=["mood_stabilizer"], drug_names=["lithium"],
        labs=[
            _lab("Lithium level", LITHIUM_LEVEL, 6), _lab("Creatinine", CREATININE, 6), _lab("TSH", TSH, 6),
        ],
        source=HUMAN_SOURCE,
    ),
    _rule(
        "Carbamazepine — drug level, CBC and CMP yearly",
        classes=["antiepileptic", "mood_stabilizer"], drug_names=["carbamazepine"],
        labs=[
            _lab("Carbamazepine level", CARBAMAZEPINE_LEVEL, 12), _lab("CBC", CBC, 12), _lab("CMP", CMP, 12),
        ],
        source=HUMAN_SOURCE,
        notes=ISMP_AED_NOTE,
    ),
    _rule(
        "Phenytoin — drug level, CBC and CMP yearly",
        classes=["antiepileptic"], drug_names=["phenytoin"],
        labs=[_lab("Phenytoin level", PHENYTOIN_LEVEL, 12), _lab("CBC", CBC, 12), _lab("CMP", CMP, 12)],
        source=HUMAN_SOURCE,
        notes=ISMP_AED_NOTE,
    ),
    _rule(
        "Valproate — drug level, CBC and CMP yearly",
        classes=["antiepileptic", "mood_stabilizer"], drug_names=["valproate", "valproic acid", "divalproex"],
        labs=[_lab("Valproate level", VALPROATE_LEVEL, 12), _lab("CBC", CBC, 12), _lab("CMP", CMP, 12)],
        source=HUMAN_SOURCE,
        notes=ISMP_AED_NOTE,
    ),
    # --- Human, class-wide rules ----------------------------------------------------------------
    _rule(
        "ACE inhibitors / ARBs — potassium and creatinine yearly",
        classes=["ace_inhibitor", "arb"],
        labs=[_lab("Potassium", POTASSIUM, 12), _lab("Creatinine", CREATININE, 12)],
        source=HUMAN_SOURCE,
    ),
    _rule(
        "Diabetes drugs — HbA1c every 6 months",
        classes=DIABETES_CLASSES,
        labs=[_lab("HbA1c", HBA1C, 6)],
        source=HUMAN_SOURCE,
        notes="Insulins and sulfonylureas are ISMP high-alert (2021): with allow_high_alert off they "
              "always go to a person; the trace still shows whether the HbA1c is current.",
    ),
    _rule(
        "Levothyroxine — TSH yearly",
        classes=["thyroid_hormone"],
        labs=[_lab("TSH", TSH, 12)],
        source=HUMAN_SOURCE,
    ),
    _rule(
        "Statins — lipid panel yearly",
        classes=["statin"],
        labs=[_lab("Lipid panel", LIPIDS, 12)],
        source=HUMAN_SOURCE,
    ),
    _rule(
        "Low-risk classes (PPIs, NSAIDs, allopurinol, acyclovir) — visit within 18 months",
        classes=["ppi", "nsaid", "xanthine_oxidase_inhibitor", "antiviral_herpes"],
        labs=[], visit_months=18,
        source=AMBULATORY_PROTOCOLS,
    ),
    # --- Veterinary -----------------------------------------------------------------------------
    _rule(
        "Veterinary NSAIDs (carprofen, meloxicam) — ALT and BUN/creatinine yearly, exam within 12 months",
        classes=["veterinary_nsaid", "nsaid"], species="veterinary",
        labs=[_lab("ALT", ALT, 12), _lab("BUN or creatinine", BUN_OR_CREATININE, 12)],
        source=f"{AVMA_VCPR}; canine NSAID monitoring every 6–12 months (12 chosen)",
        notes="Sources give 6–12 months for ALT and BUN/creatinine; the default is 12 "
              "(shorten it for older animals or higher doses).",
    ),
    _rule(
        "Phenobarbital (veterinary) — serum level and liver values every 6 months",
        classes=["antiepileptic"], drug_names=["phenobarbital"], species="veterinary",
        labs=[
            _lab("Phenobarbital level", PHENOBARBITAL_LEVEL, 6),
            _lab("Liver values (ALT/ALP)", VET_LIVER_VALUES, 6),
        ],
        source=AVMA_VCPR,
        notes="Phenobarbital is Schedule IV: with allow_controlled off every request goes to a person; "
              "the trace still shows whether the level and liver values are current.",
    ),
    _rule(
        "Insulin (veterinary) — fructosamine or glucose curve every 6 months",
        classes=["insulin"], species="veterinary",
        labs=[_lab("Fructosamine or glucose curve", FRUCTOSAMINE_OR_GLUCOSE_CURVE, 6)],
        source=AVMA_VCPR,
        notes="Insulin is a high-alert drug: with allow_high_alert off every request goes to a person.",
    ),
]


def default_rule_rows() -> list[dict[str, Any]]:
    """A deep copy of the shipped rule set, safe to modify before saving."""
    return copy.deepcopy(DEFAULT_PROTOCOL_RULES)


def build_default_rules() -> tuple[ProtocolRule, ...]:
    return tuple(rule_from_dict(row) for row in DEFAULT_PROTOCOL_RULES)
