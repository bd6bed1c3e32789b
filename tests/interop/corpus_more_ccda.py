"""What a pharmacist reads off the C-CDA files added in session 16 (HL7 C-CDA-Examples, CC0-1.0),
written by reading each file's narrative and entries (tests/data/corpus/MANIFEST.md lists them)."""
from __future__ import annotations

from datetime import date

P = "hl7-c-cda-examples/"

MORE_CCDA_EXPECTED: dict[str, dict] = {
    # Egg allergy: allergen SNOMED 102263004 "Eggs (edible)", value 414285001 allergy to food, reaction
    # hives (coded Wheal 247472004), severity Moderate (6736007), concern active.
    P + "Allergies__Allergy_to_food_egg_C-CDA2.1.xml": {
        "type": "Fragment",
        "allergies": [{"substance": "Eggs (edible)", "code": "102263004", "category": "food",
                       "reaction": ["Wheal"], "severity": "moderate", "status": "active", "negated": False}],
    },
    # Latex: 111088007, value 418038007 propensity to adverse reactions to substance, anaphylaxis, severe.
    P + "Allergies__Allergy_to_specific_substance_latex_C-CDA2.1.xml": {
        "type": "Fragment",
        "allergies": [{"substance": "Latex", "code": "111088007", "category": "other",
                       "reaction": ["Anaphylaxis"], "severity": "severe", "status": "active"}],
    },
    # Penicillin G (RxNorm 7980), drug allergy 416098002, anaphylaxis, Severe (24484000).
    P + "Allergies__Allergy_to_specific_drug_Penicillin_C-CDA2.1.xml": {
        "type": "Fragment",
        "allergies": [{"substance": "penicillin G", "code": "7980", "code_system": "rxnorm", "category": "drug",
                       "reaction": ["Anaphylaxis"], "severity": "severe", "status": "active"}],
    },
    # Drug class: SNOMED 764146007 "Penicillin" (the class), drug allergy, anaphylaxis, severe.
    P + "Allergies__Allergy_to_specific_drug_class_Penicillins_C-CDA2.1.xml": {
        "type": "Fragment",
        "allergies": [{"substance": "Penicillin", "code": "764146007", "code_system": "snomed", "category": "drug",
                       "severity": "severe", "status": "active"}],
    },
    # Lantus pen (RxNorm 847232), "Administer 40 units at bedtime": EIVL HS, subcutaneous, from 2009-01-09.
    P + "Medications__Med_at_bedtime_C-CDAR2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "847232", "code_system": "rxnorm", "frequency": "qhs", "route": "subcutaneous",
                  "as_needed": False, "status": "active", "start_date": date(2009, 1, 9)}],
    },
    # Sudafed 30 mg (pseudoephedrine, RxNorm 1049529): "take 2 tablets every 4-6 hours" (PIVL 4–6 h).
    P + "Medications__Med_every_4-6_hours_C-CDA2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "1049529", "frequency": "q4-6h", "route": "oral", "dose": "2", "as_needed": False,
                  "start_date": date(2014, 1, 18)}],
    },
    # Ibuprofen 600 mg (197806) "take 1 tablet QID PRN": PIVL 6 h institution-specified = QID, precondition.
    P + "Medications__Med_oral_QID_with_PRN_C-CDA2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "197806", "frequency": "qid", "as_needed": True, "route": "oral", "dose": "1",
                  "start_date": date(2013, 12, 18)}],
    },
    # Noscapine 3 mg/mL solution (102494) "every 4 to 6 hours prn for cough", 2 mL, 2017-12-21 → 12-31.
    P + "Medications__Med_oral_liquid_PRN_C-CDA2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "102494", "frequency": "q4-6h", "as_needed": True, "dose": "2 mL", "route": "oral",
                  "start_date": date(2017, 12, 21), "end_date": date(2017, 12, 31)}],
    },
    # Three ibuprofen 600 mg entries: q6h PRN joint pain (coded precondition; institution-specified 6 h =
    # QID), q6h "do not take on an empty stomach", q6h for joint pain (indication, not PRN).
    P + "Medications__Med_oral_with_indications_and_instructions_C-CDA2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "197806", "frequency": "qid", "as_needed": True},
                 {"code": "197806", "frequency": "q6h", "as_needed": False},
                 {"code": "197806", "frequency": "q6h", "as_needed": False}],
    },
    # Aspirin 81 mg (243670), 2 tablets once on 2013-09-11, completed: no frequency.
    P + "Medications__Single_administration_of_medication_at_single_point_in_time_C-CDA2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "243670", "frequency": "", "dose": "2", "status": "completed",
                  "start_date": date(2013, 9, 11)}],
    },
    # Echinacea extract (236121) the patient reports taking once daily; statusCode completed.
    P + "Medications__Withdrawn_Patient_reported_oral_medication_no_brand_C-CDA2.1.xml": {
        "type": "Fragment",
        "meds": [{"code": "236121", "frequency": "daily", "dose": "", "status": "completed",
                  "start_date": date(2014, 4, 9)}],
    },
    # CCD 2: Isabella Jones; allergies "No known allergies" (negated, all substances); the medications
    # and problems sections are nullFlavor NI: unknown, not empty.
    P + "Documents__CCD_2.xml": {
        "type": "CCD", "nka": True, "medications_unknown": True,
        "patient": ("Jones", "Isabella", date(1950, 12, 19), "F", None),
        "warning": "section 10160-0: no information",
    },
    # Discharge Summary: ibuprofen 600 mg QID PRN; penicillin G (nausea, severe), codeine (wheezing,
    # moderate), egg (food, moderate).
    P + "Documents__Discharge_Summary.xml": {
        "type": "DischargeSummary",
        "patient": ("Jones", "Isabella", date(2005, 5, 1), "F", None),
        "meds": [{"code": "197806", "frequency": "qid", "as_needed": True}],
        "allergies": [{"code": "7980", "category": "drug", "severity": "severe"},
                      {"code": "2670", "category": "drug", "severity": "moderate"},
                      {"substance": "Egg", "category": "food", "severity": "moderate"}],
        "problems": 2,
    },
    # Consultation / Progress / Referral notes: albuterol inhaler 2 puffs QID (PIVL 6 h institution),
    # atenolol 25 mg BID; penicillin (70618) nausea severe, codeine (2670) wheezing moderate.
    P + "Documents__Consultation_Note.xml": {
        "patient": ("Betterhalf", "Eve", date(1975, 5, 1), "F", None),
        "meds": [{"code": "573621", "frequency": "qid", "route": "inhalation"},
                 {"code": "197380", "frequency": "bid", "route": "oral"}],
        "allergies": [{"code": "70618", "category": "drug", "severity": "severe"},
                      {"code": "2670", "category": "drug", "severity": "moderate"}],
        "problems": 4,
    },
    P + "Documents__Progress_Note.xml": {
        "patient": ("Everyman", "Adam Frankie", date(1954, 11, 25), "M", None),
        "meds": [{"code": "573621", "frequency": "qid"}, {"code": "197380", "frequency": "bid"}],
        "allergies": [{"code": "70618", "category": "drug"}, {"code": "2670", "category": "drug"}],
        "problems": 3,
    },
    P + "Documents__Referral_Note.xml": {
        "patient": ("Betterhalf", "Eve", date(1975, 5, 1), "F", None),
        "meds": [{"code": "573621", "frequency": "qid"}, {"code": "197380", "frequency": "bid"}],
        "allergies": [{"code": "70618"}, {"code": "2670"}],
        "problems": 4,
    },
    # Single Medication Activity entry: atenolol 25 mg (197380), 1 tablet oral, PIVL 12 h institution = BID.
    P + "Guide_Examples__Medication_Activity_V2_Example.xml": {
        "type": "Fragment",
        "meds": [{"code": "197380", "frequency": "bid", "route": "oral", "dose": "1", "status": "active"}],
    },
    # "No known medications": a negated entry for SNOMED 410942007 "drug or medication" (in a translation).
    P + "Guide_Examples__No_Known_Medications_Example.xml": {
        "type": "Fragment",
        "meds": [{"code": "410942007", "negated": True}],
    },
    # Allergy observation: codeine (RxNorm 2670), wheezing, mild (reaction severity).
    P + "Guide_Examples__Allergy_-_Intolerance_Observation_V2_Example.xml": {
        "type": "Fragment",
        "allergies": [{"substance": "codeine", "code": "2670", "category": "drug", "reaction": ["Wheezing"],
                       "severity": "mild"}],
    },
    # Allergy concern act: penicillin (70618), nausea, active.
    P + "Guide_Examples__Allergy_Concern_Act_V3_Example.xml": {
        "type": "Fragment",
        "allergies": [{"code": "70618", "category": "drug", "reaction": ["Nausea"], "status": "active"}],
    },
    # Section skeleton: the only entry is "...." — nothing a pharmacist can read: unknown, no medication.
    P + "Guide_Examples__Medications_Section_entries_required_V2_Example.xml": {
        "type": "Fragment", "medications_unknown": True, "warning": "placeholder",
    },
    # Unstructured documents (nonXMLBody): the header's patient, no structured lists.
    P + "Unstructured__CDA_Embedded_Text_Plain_Surgical_Consult.xml": {
        "patient": ("Damore", "Juan", date(1953, 3, 2), "M", None),
        "medications_unknown": True, "allergies_unknown": True, "warning": "nonXMLBody (text/plain)",
    },
    P + "Unstructured__Unstructured_Document_reference.xml": {
        "patient": ("Levin", "Henry L", date(1953, 3, 2), "M", None),
        "medications_unknown": True, "warning": "nonXMLBody",
    },
    P + "Guide_Examples__nonXMLBody_Example_with_Embedded_Content.xml": {
        "type": "Fragment", "medications_unknown": True, "warning": "nonXMLBody fragment (text/rtf)",
    },
    # Problems: one active problem; "no known problems" (negated) is no problem entry.
    P + "Problems__Active_Problem_C-CDA2.1.xml": {"type": "Fragment", "problems": 1},
    P + "Problems__No_Known_Problems_C-CDA2.1.xml": {"type": "Fragment", "problems": 0,
                                                    "warning": "negated problem observation"},
}
