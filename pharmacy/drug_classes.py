"""Therapeutic class vocabulary shared by the whole app.

Pure Python (no Django import): the drug catalog, refill-protocol monitoring, medication
reconciliation priority, allergy cross-sensitivity checks and prior-authorization criteria all key
on the ``slug`` of a :class:`DrugClass`.

Each class carries *defaults*; a catalog row (``pharmacy/data/drug_catalog.json``) may differ for a
specific product (e.g. a prednisone burst is not ``is_urgent``; carbamazepine is ISMP high-alert
although antiepileptics as a class are not).

Sources (facts only, see the comment beside each entry):

* ISMP List of High-Alert Medications in Community/Ambulatory Care Settings, 2021
  (ismp.org/recommendations/high-alert-medications-community-ambulatory-list). Classes:
  antithrombotic agents (anticoagulants incl. warfarin, LMWH, heparin; DOACs/factor Xa
  inhibitors), chemotherapeutic agents, immunosuppressants (azaTHIOprine, cycloSPORINE,
  tacrolimus), insulins (all formulations; U-500 special emphasis), medications contraindicated in
  pregnancy (bosentan, ISOtretinoin), oral moderate/minimal sedation agents for children, opioids
  (all routes), pediatric liquid medications that require measurement, oral sulfonylurea
  hypoglycemics. Specific medications: carBAMazepine, EPINEPHrine IM/subcutaneous, lamoTRIgine,
  methotrexate (oral and parenteral, non-oncologic use), phenytoin, valproic acid.
  The earlier (2011) community list also named antiretrovirals, all oral hypoglycemics, metFORMIN,
  propylthiouracil and warfarin; we follow the 2021 list and note the differences.
* "Urgent" (a run-out is clinically urgent) is our policy default, with the clinical rationale in
  the comment beside each class; a practice may change it.
* Allergy cross-sensitivity: 2022 AAAAI/ACAAI drug allergy practice parameter (Khan DA et al.,
  Ann Allergy Asthma Immunol 2022;129:547; penicillin/cephalosporin cross-reactivity is low and
  mostly side-chain driven, flagged conservatively here); Strom BL et al., N Engl J Med
  2003;349:1628 (no meaningful cross-reactivity between sulfonamide antibiotics and non-antibiotic
  sulfonamides); sacubitril/valsartan (Entresto) labeling (contraindicated after ACE-inhibitor/ARB
  angioedema); aspirin-exacerbated respiratory disease (aspirin and COX-1 inhibiting NSAIDs
  cross-react).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HIGH = "HIGH"
MEDIUM = "MEDIUM"
LOW = "LOW"
RECONCILIATION_PRIORITIES = (HIGH, MEDIUM, LOW)


@dataclass(frozen=True)
class DrugClass:
    slug: str
    label: str
    urgent: bool = False
    high_alert: bool = False
    reconciliation_priority: str = MEDIUM
    allergy_groups: tuple[str, ...] = ()
    parent: str | None = None


# --------------------------------------------------------------------------------------------
# Allergy cross-sensitivity groups. A class lists the groups it belongs to; an allergy to any
# group (or to a class, via that class's groups) is cross-sensitive with every class sharing a
# group. A group's parent is implied by it (a penicillin allergy implies a beta-lactam allergy).
# --------------------------------------------------------------------------------------------
ALLERGY_GROUPS: dict[str, str] = {
    "beta_lactams": "Beta-lactam antibiotics",
    "penicillins": "Penicillins",
    "cephalosporins": "Cephalosporins",
    "carbapenems": "Carbapenems",
    # Sulfonamide antibiotics (sulfamethoxazole ...). Kept apart from the non-antibiotic
    # sulfonamides: Strom et al. NEJM 2003 found no meaningful cross-reactivity between them.
    "sulfonamide_antibiotics": "Sulfonamide antibiotics",
    "sulfonamide_nonantibiotics": "Non-antibiotic sulfonamides (thiazides, loop diuretics, sulfonylureas)",
    "macrolides": "Macrolides",
    "fluoroquinolones": "Fluoroquinolones",
    "tetracyclines": "Tetracyclines",
    "lincosamides": "Lincosamides",
    "nitroimidazoles": "Nitroimidazoles",
    # NSAID hypersensitivity (AERD / cross-reactive NSAID reactions) includes aspirin.
    "nsaids": "NSAIDs (incl. aspirin)",
    "salicylates": "Salicylates",
    "opioids": "Opioids",
    "benzodiazepines": "Benzodiazepines",
    # ACE-inhibitor angioedema; sacubitril/valsartan is contraindicated after ACEi/ARB angioedema.
    "ace_inhibitors": "ACE inhibitors (angioedema)",
    "arbs": "Angiotensin II receptor blockers",
    "statins": "Statins (myopathy/intolerance)",
    "tricyclic_antidepressants": "Tricyclic antidepressants",
    "phenothiazines": "Phenothiazines",
    "triptans": "Triptans",
    "bisphosphonates": "Bisphosphonates",
    "insulins": "Insulins",
    "glp1_agonists": "GLP-1 receptor agonists",
    "corticosteroids": "Corticosteroids",
}

ALLERGY_GROUP_PARENTS: dict[str, str] = {
    "penicillins": "beta_lactams",
    "cephalosporins": "beta_lactams",
    "carbapenems": "beta_lactams",
    "salicylates": "nsaids",
}


def _c(slug: str, label: str, **kw) -> tuple[str, DrugClass]:
    return slug, DrugClass(slug=slug, label=label, **kw)


THERAPEUTIC_CLASSES: dict[str, DrugClass] = dict(
    [
        # ---------------- Cardiovascular ----------------
        # ACEi/ARB: BP rises over days after a missed supply; not urgent. K+/creatinine monitoring.
        _c("ace_inhibitor", "ACE inhibitors", allergy_groups=("ace_inhibitors",)),
        _c("arb", "Angiotensin II receptor blockers", allergy_groups=("arbs",)),
        # Heart-failure drug: gaps precipitate decompensation (ACC/AHA/HFSA 2022 HF guideline).
        # Entresto label: contraindicated with a history of ACEi/ARB angioedema -> both groups.
        _c(
            "arni",
            "Angiotensin receptor-neprilysin inhibitors",
            urgent=True,
            reconciliation_priority=HIGH,
            allergy_groups=("arbs", "ace_inhibitors"),
            parent="arb",
        ),
        # Beta blockers: labels (e.g. metoprolol, atenolol) carry a boxed warning that abrupt
        # cessation can exacerbate angina and precipitate MI in ischemic heart disease.
        _c("beta_blocker", "Beta blockers", urgent=True, reconciliation_priority=HIGH),
        _c("calcium_channel_blocker", "Calcium channel blockers"),
        _c(
            "thiazide_diuretic",
            "Thiazide and thiazide-like diuretics",
            allergy_groups=("sulfonamide_nonantibiotics",),
        ),
        # Loop diuretics keep heart-failure patients euvolemic; a gap leads to congestion and
        # admission, so treated as a heart-failure drug (urgent).
        _c(
            "loop_diuretic",
            "Loop diuretics",
            urgent=True,
            reconciliation_priority=HIGH,
            allergy_groups=("sulfonamide_nonantibiotics",),
        ),
        # Spironolactone/triamterene: effect wanes slowly; hyperkalemia risk drives monitoring.
        _c("potassium_sparing_diuretic", "Potassium-sparing diuretics / aldosterone antagonists"),
        _c("statin", "HMG-CoA reductase inhibitors (statins)", allergy_groups=("statins",)),
        _c("lipid_other", "Other lipid-lowering agents (ezetimibe, fibrates)", reconciliation_priority=LOW),
        # ISMP 2021: antithrombotic agents (anticoagulants, DOACs/factor Xa inhibitors) high-alert.
        # Missed doses -> stroke/VTE (short half-life DOACs lose effect within a day).
        _c("anticoagulant", "Anticoagulants", urgent=True, high_alert=True, reconciliation_priority=HIGH),
        # Antiplatelets: interrupting P2Y12 therapy after a coronary stent risks stent thrombosis
        # (2016 ACC/AHA DAPT focused update). Oral antiplatelets are not named on the ISMP 2021
        # community list, so not high-alert by default.
        _c("antiplatelet", "Antiplatelet agents", urgent=True, reconciliation_priority=HIGH),
        # Aspirin: an antiplatelet that also cross-reacts with NSAIDs (AERD).
        _c(
            "salicylate",
            "Salicylates (low-dose aspirin)",
            urgent=True,
            reconciliation_priority=HIGH,
            allergy_groups=("salicylates", "nsaids"),
            parent="antiplatelet",
        ),
        # Antiarrhythmics: loss of rhythm control; IV forms are on the ISMP acute-care list only.
        _c("antiarrhythmic", "Antiarrhythmics", urgent=True, reconciliation_priority=HIGH),
        # Digoxin: narrow therapeutic index, rate control/heart failure.
        _c("cardiac_glycoside", "Cardiac glycosides (digoxin)", urgent=True, reconciliation_priority=HIGH),
        # Nitrates: anti-anginal; sublingual nitroglycerin must be on hand for chest pain.
        _c("nitrate", "Nitrates", urgent=True, reconciliation_priority=HIGH),
        _c("antianginal_other", "Other antianginals (ranolazine)", urgent=True, reconciliation_priority=HIGH),
        _c("vasodilator", "Direct vasodilators (hydralazine)"),
        # Clonidine/guanfacine: labels warn of rebound hypertension on abrupt withdrawal.
        _c("alpha2_agonist", "Central alpha-2 agonists", urgent=True, reconciliation_priority=HIGH),
        # Pimobendan (canine congestive heart failure; Vetmedin labeling).
        _c("inodilator", "Inodilators (pimobendan)", urgent=True, reconciliation_priority=HIGH),
        _c("electrolyte_supplement", "Electrolyte supplements (potassium)"),
        # ---------------- Diabetes / endocrine ----------------
        # ISMP 2021: insulins, all formulations; missed basal insulin -> DKA in type 1 diabetes.
        _c(
            "insulin",
            "Insulins",
            urgent=True,
            high_alert=True,
            reconciliation_priority=HIGH,
            allergy_groups=("insulins",),
        ),
        # Metformin was named on the 2011 ISMP list only; the 2021 list names sulfonylureas.
        _c("biguanide", "Biguanides (metformin)"),
        # ISMP 2021: sulfonylurea hypoglycemics, oral.
        _c(
            "sulfonylurea",
            "Sulfonylureas",
            high_alert=True,
            reconciliation_priority=HIGH,
            allergy_groups=("sulfonamide_nonantibiotics",),
        ),
        _c("thiazolidinedione", "Thiazolidinediones (pioglitazone)"),
        _c("dpp4_inhibitor", "DPP-4 inhibitors"),
        _c("sglt2_inhibitor", "SGLT2 inhibitors"),
        _c("glp1_agonist", "GLP-1 receptor agonists", allergy_groups=("glp1_agonists",)),
        # Levothyroxine: ~7-day half-life, a short gap is not urgent (TSH monitoring yearly).
        _c("thyroid_hormone", "Thyroid hormones"),
        # Propylthiouracil was named on the 2011 ISMP list only (not 2021).
        _c("antithyroid", "Antithyroid agents"),
        _c(
            "corticosteroid_oral",
            "Systemic corticosteroids (oral)",
            # Abrupt withdrawal after chronic use can cause adrenal insufficiency (prednisone
            # labeling); short bursts are marked non-urgent at product level.
            urgent=True,
            reconciliation_priority=HIGH,
            allergy_groups=("corticosteroids",),
        ),
        _c("estrogen", "Estrogens"),
        _c("contraceptive", "Hormonal contraceptives"),
        # Anabolic steroid, DEA Schedule III (21 CFR 1308.13(f)).
        _c("testosterone", "Testosterone / androgens"),
        _c(
            "bisphosphonate",
            "Bisphosphonates",
            reconciliation_priority=LOW,
            allergy_groups=("bisphosphonates",),
        ),
        # ---------------- Neurology / psychiatry ----------------
        # Antiepileptics: abrupt withdrawal can precipitate seizures/status epilepticus (AED
        # labeling). The class is not ISMP high-alert, but the 2021 list names carbamazepine,
        # lamotrigine, phenytoin and valproic acid individually (flagged at product level).
        _c("antiepileptic", "Antiepileptics", urgent=True, reconciliation_priority=HIGH),
        # FDA 2020 boxed warning: abrupt discontinuation/rapid taper of benzodiazepines can cause
        # life-threatening withdrawal (seizures). DEA Schedule IV (21 CFR 1308.14(c)).
        _c(
            "benzodiazepine",
            "Benzodiazepines",
            urgent=True,
            reconciliation_priority=HIGH,
            allergy_groups=("benzodiazepines",),
        ),
        _c("sedative_hypnotic", "Non-benzodiazepine sedative-hypnotics (Z-drugs)"),
        _c("anxiolytic_other", "Other anxiolytics (buspirone)"),
        # ISMP 2021: opioids, all routes. Not urgent as a class (much use is acute); long-acting
        # products used for chronic pain are urgent at product level (FDA 2019 safety
        # communication on harms of abrupt opioid discontinuation).
        _c(
            "opioid_analgesic",
            "Opioid agonists (analgesic and antitussive)",
            high_alert=True,
            reconciliation_priority=HIGH,
            allergy_groups=("opioids",),
        ),
        # Buprenorphine for opioid use disorder: a gap risks relapse and overdose.
        _c(
            "opioid_use_disorder",
            "Opioid use disorder treatment (buprenorphine)",
            urgent=True,
            high_alert=True,
            reconciliation_priority=HIGH,
            allergy_groups=("opioids",),
        ),
        _c("opioid_antagonist", "Opioid antagonists (naloxone)"),
        _c("nsaid", "Nonsteroidal anti-inflammatory drugs", allergy_groups=("nsaids",)),
        # Antidepressants: discontinuation syndrome is unpleasant but rarely dangerous.
        _c("ssri", "Selective serotonin reuptake inhibitors"),
        _c("snri", "Serotonin-norepinephrine reuptake inhibitors"),
        _c(
            "tricyclic_antidepressant",
            "Tricyclic antidepressants",
            allergy_groups=("tricyclic_antidepressants",),
        ),
        _c("other_antidepressant", "Other antidepressants (bupropion, mirtazapine, trazodone)"),
        # Antipsychotics: relapse after interruption develops over weeks, so not urgent by
        # default; high reconciliation priority (QT, metabolic effects; clozapine REMS).
        _c("antipsychotic", "Antipsychotics", reconciliation_priority=HIGH),
        # Lithium: narrow therapeutic index (level, creatinine, TSH every 6 months).
        _c("mood_stabilizer", "Mood stabilizers (lithium)", reconciliation_priority=HIGH),
        # CNS stimulants: amphetamine, methylphenidate, lisdexamfetamine are DEA Schedule II.
        _c("stimulant_adhd", "CNS stimulants for ADHD"),
        _c("adhd_nonstimulant", "Non-stimulant ADHD agents (atomoxetine)"),
        _c("wakefulness_agent", "Wakefulness-promoting agents (modafinil)"),
        _c("anorexiant", "Anorexiants (phentermine)"),
        _c("muscle_relaxant", "Skeletal muscle relaxants", reconciliation_priority=LOW),
        _c("migraine_triptan", "Triptans", reconciliation_priority=LOW, allergy_groups=("triptans",)),
        _c("dementia", "Dementia agents (cholinesterase inhibitors, memantine)"),
        # Abrupt levodopa withdrawal can cause a hyperpyrexia/confusion syndrome resembling NMS
        # (carbidopa-levodopa labeling).
        _c("parkinson", "Antiparkinson agents", urgent=True, reconciliation_priority=HIGH),
        _c("smoking_cessation", "Smoking-cessation agents", reconciliation_priority=LOW),
        # ---------------- Gastrointestinal ----------------
        _c("ppi", "Proton pump inhibitors", reconciliation_priority=LOW),
        _c("h2_blocker", "H2-receptor antagonists", reconciliation_priority=LOW),
        _c("antiemetic", "Antiemetics", reconciliation_priority=LOW),
        _c("antidiarrheal", "Antidiarrheals", reconciliation_priority=LOW),
        _c("antispasmodic_gi", "GI antispasmodics", reconciliation_priority=LOW),
        # ---------------- Anti-infectives ----------------
        _c("penicillin", "Penicillins", allergy_groups=("penicillins", "beta_lactams")),
        _c("cephalosporin", "Cephalosporins", allergy_groups=("cephalosporins", "beta_lactams")),
        _c("macrolide", "Macrolides", allergy_groups=("macrolides",)),
        _c("fluoroquinolone", "Fluoroquinolones", allergy_groups=("fluoroquinolones",)),
        _c("tetracycline", "Tetracyclines", allergy_groups=("tetracyclines",)),
        _c(
            "sulfonamide_antibiotic",
            "Sulfonamide antibiotics",
            allergy_groups=("sulfonamide_antibiotics",),
        ),
        _c("lincosamide", "Lincosamides (clindamycin)", allergy_groups=("lincosamides",)),
        _c("nitroimidazole", "Nitroimidazoles (metronidazole)", allergy_groups=("nitroimidazoles",)),
        _c("urinary_antiinfective", "Urinary anti-infectives (nitrofurantoin)"),
        _c("antifungal", "Antifungals"),
        _c("antiviral_herpes", "Antiherpetic antivirals", reconciliation_priority=LOW),
        _c("antiviral_influenza", "Influenza antivirals", reconciliation_priority=LOW),
        # Antiretrovirals: gaps select for resistance (DHHS guidelines; adherence threshold 90 %
        # PDC). Named on the 2011 ISMP community list, not on the 2021 list.
        _c("antiretroviral", "Antiretrovirals", urgent=True, reconciliation_priority=HIGH),
        _c("topical_antiinfective", "Topical anti-infectives", reconciliation_priority=LOW),
        # ---------------- Immunology / rheumatology ----------------
        # DMARDs: methotrexate (weekly dosing, ISMP 2021 high-alert non-oncologic) is flagged at
        # product level; hydroxychloroquine is not high-alert.
        _c("dmard", "Disease-modifying antirheumatic drugs", reconciliation_priority=HIGH),
        # ISMP 2021: immunosuppressant agents; missed doses risk transplant rejection.
        _c(
            "immunosuppressant",
            "Immunosuppressants",
            urgent=True,
            high_alert=True,
            reconciliation_priority=HIGH,
        ),
        # ---------------- Respiratory / allergy ----------------
        _c("inhaled_corticosteroid", "Inhaled corticosteroids", allergy_groups=("corticosteroids",)),
        _c(
            "ics_laba",
            "Inhaled corticosteroid + long-acting beta agonist",
            allergy_groups=("corticosteroids",),
            parent="inhaled_corticosteroid",
        ),
        _c("nasal_corticosteroid", "Intranasal corticosteroids", reconciliation_priority=LOW),
        # Every patient with asthma should have a short-acting rescue bronchodilator available
        # (NAEPP 2020 focused update / GINA).
        _c("bronchodilator_saba", "Short-acting beta agonists", urgent=True, reconciliation_priority=HIGH),
        _c("bronchodilator_laba", "Long-acting beta agonists"),
        _c("bronchodilator_lama", "Long-acting muscarinic antagonists"),
        _c("leukotriene_modifier", "Leukotriene modifiers"),
        _c("antihistamine", "Antihistamines", reconciliation_priority=LOW),
        _c("antitussive", "Non-opioid antitussives", reconciliation_priority=LOW),
        # ISMP 2021 names epinephrine IM/subcutaneous; an auto-injector must be on hand.
        _c(
            "anaphylaxis_epinephrine",
            "Epinephrine auto-injectors",
            urgent=True,
            high_alert=True,
            reconciliation_priority=HIGH,
        ),
        # ---------------- Urology / men's and women's health ----------------
        _c("bph_alpha_blocker", "Alpha-1 blockers (BPH/hypertension)"),
        _c("5ari", "5-alpha-reductase inhibitors", reconciliation_priority=LOW),
        _c("overactive_bladder", "Overactive bladder agents", reconciliation_priority=LOW),
        _c("pde5_inhibitor", "PDE-5 inhibitors", reconciliation_priority=LOW),
        # ---------------- Gout ----------------
        _c("xanthine_oxidase_inhibitor", "Xanthine oxidase inhibitors", reconciliation_priority=LOW),
        _c("gout_other", "Other gout agents (colchicine)"),
        # ---------------- Dermatology / ophthalmology ----------------
        # ISMP 2021: medications contraindicated during pregnancy (e.g. isotretinoin).
        _c("retinoid_oral", "Oral retinoids (isotretinoin)", high_alert=True, reconciliation_priority=HIGH),
        _c("topical_corticosteroid", "Topical corticosteroids", reconciliation_priority=LOW),
        _c("ophthalmic_glaucoma", "Glaucoma agents (ophthalmic)"),
        # ---------------- Supplements ----------------
        _c("vitamin_supplement", "Vitamins and supplements", reconciliation_priority=LOW),
        # ---------------- Veterinary ----------------
        # Canine NSAIDs (carprofen, meloxicam): ALT and BUN/creatinine every 6-12 months.
        _c("veterinary_nsaid", "Veterinary NSAIDs", allergy_groups=("nsaids",), parent="nsaid"),
        _c("veterinary_antiparasitic", "Veterinary parasiticides", reconciliation_priority=LOW),
        _c("veterinary_other", "Other veterinary drugs"),
        # ---------------- Fallback ----------------
        _c("other", "Other"),
    ]
)

# ISMP 2021 community/ambulatory list, "specific medications" (generic names, lower case).
# Products whose active ingredients include one of these are high-alert whatever their class.
ISMP_SPECIFIC_HIGH_ALERT: frozenset[str] = frozenset(
    {
        "carbamazepine",
        "epinephrine",
        "lamotrigine",
        "methotrexate",
        "phenytoin",
        "valproic acid",
        "divalproex sodium",  # delivers valproic acid
        "heparin",
        "enoxaparin",
        "warfarin",
    }
)


def _norm(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def class_info(slug: str | None) -> DrugClass | None:
    """The :class:`DrugClass` for ``slug`` (case/space/hyphen tolerant), or None."""
    if not slug:
        return None
    return THERAPEUTIC_CLASSES.get(_norm(slug))


def is_urgent(slug: str | None) -> bool:
    info = class_info(slug)
    return bool(info and info.urgent)


def is_high_alert(slug: str | None) -> bool:
    info = class_info(slug)
    return bool(info and info.high_alert)


def reconciliation_priority(slug: str | None) -> str:
    info = class_info(slug)
    return info.reconciliation_priority if info else MEDIUM


def ancestors(slug: str | None) -> tuple[str, ...]:
    """The class itself followed by its parents (broadest last)."""
    out: list[str] = []
    info = class_info(slug)
    while info is not None and info.slug not in out:
        out.append(info.slug)
        info = class_info(info.parent)
    return tuple(out)


def _expand_groups(groups: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for group in groups:
        g = _norm(group)
        while g and g not in out:
            out.add(g)
            g = ALLERGY_GROUP_PARENTS.get(g, "")
    return out


def allergy_groups_for(slug: str | None) -> tuple[str, ...]:
    """Cross-sensitivity groups of a class, including implied broader groups."""
    info = class_info(slug)
    if info is None:
        return ()
    return tuple(sorted(_expand_groups(info.allergy_groups)))


def _resolve_allergy(value: str | Iterable[str]) -> tuple[set[str], set[str]]:
    """(class slugs, allergy groups) named by an allergy record."""
    items = [value] if isinstance(value, str) else list(value)
    classes: set[str] = set()
    groups: set[str] = set()
    for item in items:
        if not item:
            continue
        key = _norm(item)
        if key in THERAPEUTIC_CLASSES:
            classes.add(key)
            groups.update(allergy_groups_for(key))
        elif key in ALLERGY_GROUPS:
            groups.update(_expand_groups([key]))
    return classes, groups


def cross_sensitive(allergy_class_or_groups: str | Iterable[str], drug_class: str) -> bool:
    """Whether an allergy (a class slug, a group slug, or an iterable of either) is
    cross-sensitive with a drug of ``drug_class``.

    True when the allergy names the drug's own class, or when an allergy group (or a group it
    implies, e.g. penicillins -> beta_lactams) is one of the drug class's groups. Sulfonamide
    antibiotics and non-antibiotic sulfonamides are separate groups (Strom et al. 2003).
    """
    info = class_info(drug_class)
    if info is None:
        return False
    classes, groups = _resolve_allergy(allergy_class_or_groups)
    if info.slug in classes:
        return True
    return bool(groups & set(allergy_groups_for(info.slug)))


def _validate() -> None:
    for slug, info in THERAPEUTIC_CLASSES.items():
        assert slug == info.slug, slug
        assert info.reconciliation_priority in RECONCILIATION_PRIORITIES, slug
        assert info.parent is None or info.parent in THERAPEUTIC_CLASSES, slug
        for group in info.allergy_groups:
            assert group in ALLERGY_GROUPS, (slug, group)
    for child, parent in ALLERGY_GROUP_PARENTS.items():
        assert child in ALLERGY_GROUPS and parent in ALLERGY_GROUPS, child


_validate()
