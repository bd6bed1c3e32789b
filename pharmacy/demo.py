"""Deterministic demo data: a human practice and a veterinary clinic, their pharmacies,
prescribers, 220 patients and 30 animals with prescriptions, fills (with gaps and early fills),
allergies, diagnoses, coverage, labs and visits. Workflow apps add their own demo rows through
the ``demo_seed(context)`` they register (pharmacy/registry.py)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from . import models, registry
from .actors import bulk_create_recorded, save_with_history, stamp, system_actor
from .catalog import drug_catalog_load
from .progress import Progress
from .rules.controlled import SCHEDULES_III_IV, refill_deadline
from .services import fill_record_many
from .validators import icd10cm_is_valid, luhn_checksum_ok

DEMO_PASSWORD = "rx-demo-pass-2026"
DEMO_USERS = [
    # username, role, first, last
    ("pharmacist", "pharmacist", "Paula", "Reyes"),
    ("pharmacist2", "pharmacist", "Omar", "Haddad"),
    ("technician", "technician", "Tess", "Nguyen"),
    ("prescriber", "prescriber", "Daniel", "Okafor"),
    ("admin", "admin", "Ada", "Brooks"),
    ("integrator", "integrator", "Ivan", "Kowalski"),
]

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
         "Maria", "Luis", "Mei", "Hiroshi", "Aisha", "Kwame", "Olga", "Rahul", "Fatima", "Diego", "Grace", "Noah"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
        "Chen", "Patel", "Kim", "Nguyen", "Okafor", "Kowalczyk", "Ivanova", "Cohen", "Murphy", "Rossi"]
PETS = [("Biscuit", "dog", "Labrador Retriever"), ("Luna", "cat", "Domestic Shorthair"), ("Max", "dog", "Beagle"),
        ("Bella", "dog", "German Shepherd"), ("Oliver", "cat", "Maine Coon"), ("Daisy", "dog", "Golden Retriever"),
        ("Milo", "cat", "Siamese"), ("Rocky", "dog", "Boxer"), ("Cleo", "cat", "Ragdoll"), ("Buddy", "dog", "Poodle")]

# Indication per therapeutic class (ICD-10-CM), used for diagnoses and prescription indications.
CLASS_DIAGNOSES = {
    "ace_inhibitor": "I10", "arb": "I10", "calcium_channel_blocker": "I10", "thiazide_diuretic": "I10",
    "beta_blocker": "I10", "loop_diuretic": "I50.9", "potassium_sparing_diuretic": "I50.9", "statin": "E78.5",
    "biguanide": "E11.9", "sulfonylurea": "E11.9", "dpp4_inhibitor": "E11.9", "sglt2_inhibitor": "E11.9",
    "glp1_agonist": "E11.9", "insulin": "E11.65", "thyroid_hormone": "E03.9", "antiepileptic": "G40.909",
    "anticoagulant": "I48.91", "antiplatelet": "I25.10", "ssri": "F32.9", "snri": "F32.9", "ppi": "K21.9",
    "h2_blocker": "K21.9", "benzodiazepine": "F41.1", "opioid_analgesic": "G89.29", "nsaid": "M17.9",
    "inhaled_corticosteroid": "J45.909", "bronchodilator_saba": "J45.909", "leukotriene_modifier": "J45.909",
    "xanthine_oxidase_inhibitor": "M10.9", "bph_alpha_blocker": "N40.0", "antipsychotic": "F20.9",
    "stimulant_adhd": "F90.9", "sedative_hypnotic": "G47.00", "antihistamine": "J30.9", "dementia": "G30.9",
    "bisphosphonate": "M81.0", "antiarrhythmic": "I48.91", "cardiac_glycoside": "I50.9", "nitrate": "I20.9",
    "mood_stabilizer": "F31.9", "migraine_triptan": "G43.909", "overactive_bladder": "N32.81",
}
# Monitoring labs per class (LOINC code, name, unit, normal low, normal high).
CLASS_LABS = {
    "ace_inhibitor": [("2823-3", "Potassium", "mmol/L", 3.5, 5.1), ("2160-0", "Creatinine", "mg/dL", 0.6, 1.3)],
    "arb": [("2823-3", "Potassium", "mmol/L", 3.5, 5.1), ("2160-0", "Creatinine", "mg/dL", 0.6, 1.3)],
    "potassium_sparing_diuretic": [("2823-3", "Potassium", "mmol/L", 3.5, 5.1)],
    "biguanide": [("2160-0", "Creatinine", "mg/dL", 0.6, 1.3), ("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6)],
    "sulfonylurea": [("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6)],
    "glp1_agonist": [("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6)],
    "sglt2_inhibitor": [("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6)],
    "dpp4_inhibitor": [("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6)],
    "insulin": [("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6)],
    "thyroid_hormone": [("3016-3", "TSH", "mIU/L", 0.4, 4.5)],
    "statin": [("13457-7", "LDL cholesterol (calculated)", "mg/dL", 0, 99)],
    "anticoagulant": [("6301-6", "INR", "", 2.0, 3.0)],
    "veterinary_nsaid": [("1742-6", "ALT", "U/L", 10, 125), ("3094-0", "BUN", "mg/dL", 7, 27)],
}


@dataclass
class DemoContext:
    rng: random.Random
    today: date
    stdout: object
    facility: models.Facility | None = None
    vet_facility: models.Facility | None = None
    pharmacies: list = field(default_factory=list)
    prescribers: list = field(default_factory=list)
    vets: list = field(default_factory=list)
    patients: list = field(default_factory=list)
    animals: list = field(default_factory=list)
    prescriptions: list = field(default_factory=list)
    users: dict = field(default_factory=dict)


def make_npi(rng: random.Random) -> str:
    base = "1" + "".join(rng.choice("0123456789") for _ in range(8))
    for check in "0123456789":
        if luhn_checksum_ok("80840" + base + check):
            return base + check
    raise AssertionError("unreachable")


def make_dea(rng: random.Random, last_name: str, first_letter: str = "B") -> str:
    d = [rng.randrange(10) for _ in range(6)]
    check = ((d[0] + d[2] + d[4]) + 2 * (d[1] + d[3] + d[5])) % 10
    return first_letter + last_name[0].upper() + "".join(map(str, d)) + str(check)


def seed_demo(*, stdout, seed: int = 20261124) -> DemoContext:
    ctx = DemoContext(rng=random.Random(seed), today=timezone.localdate(), stdout=stdout)
    actor = system_actor("system:demo-seed")
    with transaction.atomic():
        created, present = drug_catalog_load(actor=actor)
        stdout.write(f"Drug catalog: {created} drugs loaded ({present} already present).\n")
        _places(ctx, actor)
        _users(ctx)
        _patients(ctx, actor)
        _prescriptions(ctx, actor)
        _clinical_context(ctx, actor)
    for seed in registry.demo_seeders():  # each app's demo rows (its registered demo_seed)
        seed(ctx)
    return ctx


def _places(ctx: DemoContext, actor) -> None:
    rng = ctx.rng
    ctx.facility = save_with_history(
        models.Facility(code="MAIN", name="Riverside Family Medicine", kind="human", phone="617-555-0100",
                        address_line1="200 River St", city="Boston", state="MA", postal_code="02114"),
        actor=actor, reason="Demo data")
    ctx.vet_facility = save_with_history(
        models.Facility(code="VET", name="Oakwood Veterinary Clinic", kind="veterinary", phone="617-555-0190",
                        address_line1="45 Oak Ave", city="Newton", state="MA", postal_code="02458"),
        actor=actor, reason="Demo data")
    for index, (name, city) in enumerate([("Main Street Pharmacy", "Boston"), ("Harbor Community Pharmacy", "Quincy"),
                                          ("Oakwood Vet Pharmacy", "Newton")]):
        ctx.pharmacies.append(save_with_history(models.Pharmacy(
            ncpdp_id=f"{3100001 + index * 17:07d}", npi=make_npi(rng), name=name, city=city, state="MA",
            address_line1=f"{100 + index * 25} Main St", postal_code="02110", phone=f"617-555-01{10 + index}"),
            actor=actor, reason="Demo data"))
    names = [("Daniel", "Okafor", "MD"), ("Susan", "Lee", "MD"), ("Maria", "Garcia", "NP"), ("Robert", "Chen", "DO"),
             ("Emily", "Novak", "MD"), ("Kevin", "Patel", "PA"), ("Laura", "Schmidt", "MD"), ("Ahmed", "Farouk", "MD")]
    for first, last, cred in names:
        ctx.prescribers.append(
            save_with_history(
                models.Prescriber(
                    first_name=first,
                    last_name=last,
                    credentials=cred,
                    npi=make_npi(rng),
                    dea_number=make_dea(rng, last),
                    email=f"{first.lower()}.{last.lower()}@riverside.example.com",
                    phone=f"617-555-02{len(ctx.prescribers):02d}",
                    practice=ctx.facility,
                    link_preference="email",
                ),
                actor=actor,
                reason="Demo data",
            )
        )
    for first, last in [("Hannah", "Whitfield"), ("Carlos", "Mendez")]:
        ctx.vets.append(save_with_history(models.Prescriber(
            first_name=first, last_name=last, credentials="DVM", is_veterinarian=True, npi=None,
            state_license_number=f"VT-{rng.randrange(10000, 99999)}", state_license_state="MA",
            dea_number=make_dea(rng, last, "A"), email=f"{first.lower()}@oakwood-vet.example.com",
            phone=f"617-555-03{len(ctx.vets):02d}", practice=ctx.vet_facility), actor=actor, reason="Demo data"))


def _users(ctx: DemoContext) -> None:
    User = get_user_model()
    for username, role, first, last in DEMO_USERS:
        user = User.objects.create_user(username=username, password=DEMO_PASSWORD, first_name=first, last_name=last,
                                        email=f"{username}@rxhub.example.com", is_staff=(role == "admin"))
        user.groups.add(Group.objects.get(name=role))
        ctx.users[username] = user
    prescriber = ctx.prescribers[0]
    prescriber.user = ctx.users["prescriber"]
    prescriber.save(update_fields=["user"])
    ctx.users["integrator_token"] = Token.objects.create(user=ctx.users["integrator"]).key
    # The integrator account speaks for the demo pharmacies (POST /api/v1/ncpdp/ refuses any other sender).
    for pharmacy in ctx.pharmacies:
        stamp(pharmacy, actor=system_actor("system:demo-seed"), reason="Demo data: integrator account bound")
        pharmacy.integrator_users.add(ctx.users["integrator"])


def _patients(ctx: DemoContext, actor) -> None:
    rng, today = ctx.rng, ctx.today
    patients = []
    progress = Progress("Patients", 250, stream=ctx.stdout)
    for index in range(220):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        born = today - timedelta(days=rng.randrange(18 * 365, 92 * 365))
        consent = rng.random() < 0.8
        pref = rng.choice(["sms", "sms", "email", "phone"]) if consent else rng.choice(["none", "phone"])
        patients.append(models.Patient(
            facility=ctx.facility, mrn=f"M{100000 + index}", first_name=first, last_name=last, birth_date=born,
            sex=rng.choice("FM"), phone=f"617-555-{1000 + index:04d}",
            email=f"{first.lower()}.{last.lower()}{index}@example.com", address_line1=f"{rng.randrange(1, 999)} Elm St",
            city=rng.choice(["Boston", "Cambridge", "Quincy", "Somerville"]), state="MA", postal_code="02139",
            preferred_pharmacy=ctx.pharmacies[index % 2], contact_preference=pref, consent_to_messages=consent,
            last_visit_date=today - timedelta(days=rng.choice([20, 60, 120, 200, 300, 400, 500])),
            primary_prescriber=ctx.prescribers[index % len(ctx.prescribers)]))
        progress.advance()
    ctx.patients = bulk_create_recorded(models.Patient, patients, actor=actor, reason="Demo data")
    owners = [(rng.choice(FIRST), rng.choice(LAST)) for _ in range(25)]
    animals = []
    for index in range(30):
        # Owners 0–4 have two pets each: intake must ask which one.
        owner_first, owner_last = owners[index % 25]
        name, species, breed = PETS[index % len(PETS)]
        animals.append(models.Patient(
            facility=ctx.vet_facility, mrn=f"V{5000 + index}", first_name=name, last_name=owner_last,
            birth_date=today - timedelta(days=rng.randrange(365, 14 * 365)), sex=rng.choice("FM"), species=species,
            breed=breed, weight_kg=Decimal(rng.randrange(30, 450)) / 10 if species == "cat" else
            Decimal(rng.randrange(80, 420)) / 10, owner_first_name=owner_first, owner_last_name=owner_last,
            phone=f"617-555-{7000 + index % 25:04d}", email=f"{owner_first.lower()}.{owner_last.lower()}@example.org",
            preferred_pharmacy=ctx.pharmacies[2], contact_preference="sms", consent_to_messages=True,
            last_visit_date=today - timedelta(days=rng.choice([30, 90, 200, 420])),
            primary_prescriber=ctx.vets[index % 2]))
        progress.advance()
    ctx.animals = bulk_create_recorded(models.Patient, animals, actor=actor, reason="Demo data")
    progress.finish()


def _pick_drugs(ctx: DemoContext):
    human = list(models.Drug.objects.filter(species="human", is_active=True).order_by("id"))
    vet = list(models.Drug.objects.filter(species="veterinary", is_active=True).order_by("id"))
    maintenance = [d for d in human if d.is_maintenance and d.dea_schedule == "none"]
    controlled = [d for d in human if d.dea_schedule != "none"]
    acute = [d for d in human if not d.is_maintenance and d.dea_schedule == "none"]
    return maintenance, controlled, acute, vet


def _prescriptions(ctx: DemoContext, actor) -> None:
    rng, today = ctx.rng, ctx.today
    maintenance, controlled, acute, vet = _pick_drugs(ctx)
    if not maintenance:
        raise RuntimeError("The drug catalog is empty; cannot seed prescriptions.")
    rx_rows, fill_plan = [], []
    rx_counter = 7000000

    def plan(patient, drug, prescriber, *, status="active", refills=None, days=30, expired=False, pharmacy=None):
        nonlocal rx_counter
        rx_counter += 1
        schedule = drug.dea_schedule
        if refills is None:
            refills = {"2": 0, "3": rng.choice([0, 2, 5]), "4": rng.choice([1, 2, 5])}.get(
                schedule, rng.choice([0, 1, 2, 3, 5, 11]))
        fills = rng.randint(1, refills + 1)
        run_out_offset = rng.randint(-12, 40)
        last_fill = min(today + timedelta(days=run_out_offset - days), today - timedelta(days=rng.randint(0, 3)))
        fill_dates = [last_fill]
        for _ in range(fills - 1):
            gap = days + rng.choice([0, 0, 0, -5, -3, 4, 9, 20])  # early refills and gaps
            fill_dates.insert(0, fill_dates[0] - timedelta(days=max(gap, days // 2)))
        written = fill_dates[0] - timedelta(days=rng.randint(0, 4))
        if schedule in SCHEDULES_III_IV:
            expiration = refill_deadline(written)
        else:
            expiration = written + timedelta(days=365)
        if expired:
            written = today - timedelta(days=400)
            fill_dates = [written + timedelta(days=i * days) for i in range(min(fills, 3))]
            expiration = written + timedelta(days=365)
            status = "expired"
        elif expiration < today and status == "active":
            status = "expired"
        remaining = max(0, refills - (len(fill_dates) - 1))
        doses_a_day = rng.choice([1, 1, 2])
        quantity = Decimal(days * doses_a_day)
        # The sig agrees with quantity / days supply (a mismatch is a warning before approval, issue 13).
        sigs = (["Take 1 tablet by mouth twice daily"] * 4 if doses_a_day == 2 else
                ["Take 1 tablet by mouth once daily", "Take 1 tablet by mouth once daily",
                 "Take 1 tablet by mouth at bedtime", "Take 1 tablet by mouth every morning"])
        rx = models.Prescription(
            patient=patient, prescriber=prescriber, drug=drug, rx_number=f"RX{rx_counter}",
            sig=rng.choice(sigs)
            if drug.dose_form in ("tablet", "capsule", "") else f"Use as directed ({drug.dose_form})",
            quantity=quantity, days_supply=days, refills_authorized=refills, refills_remaining=remaining,
            written_date=written, expiration_date=expiration, pharmacy=pharmacy or patient.preferred_pharmacy,
            status=status, indication_code=CLASS_DIAGNOSES.get(drug.therapeutic_class, ""), dea_schedule=schedule)
        rx_rows.append(rx)
        fill_plan.append((rx, fill_dates, quantity, days))

    for index, patient in enumerate(ctx.patients):
        prescriber = patient.primary_prescriber
        for drug in rng.sample(maintenance, k=rng.randint(1, 4)):
            plan(patient, drug, prescriber, days=rng.choice([30, 30, 30, 90]))
        if index % 6 == 0 and controlled:
            drug = rng.choice(controlled)
            plan(patient, drug, prescriber, days=30 if drug.dea_schedule != "2" else rng.choice([7, 14, 30]))
        if index % 9 == 0 and acute:
            plan(patient, rng.choice(acute), prescriber, days=10, refills=0, status="completed")
        if index % 11 == 0:
            plan(patient, rng.choice(maintenance), prescriber, expired=True)
    for animal in ctx.animals:
        for drug in rng.sample(vet, k=min(len(vet), rng.randint(1, 2))) if vet else []:
            dea_ok = drug.dea_schedule == "none" or animal.primary_prescriber.dea_number
            if dea_ok:
                plan(animal, drug, animal.primary_prescriber, days=30)
    for rx in rx_rows:
        if rx.indication_code and not icd10cm_is_valid(rx.indication_code):
            rx.indication_code = ""
    ctx.prescriptions = bulk_create_recorded(models.Prescription, rx_rows, actor=actor, reason="Demo data")
    fills = []
    progress = Progress("Fills", len(fill_plan), stream=ctx.stdout)
    for rx, dates, quantity, days in fill_plan:
        for fill_date in dates:
            picked = timezone.make_aware(datetime.combine(fill_date, time(15))) if fill_date < today else None
            fills.append(models.Fill(prescription=rx, fill_date=fill_date, quantity=quantity, days_supply=days,
                                     pharmacy=rx.pharmacy, status="picked_up" if picked else "dispensed",
                                     picked_up_at=picked))
        progress.advance()
    fill_record_many(fills=fills, actor=actor, reason="Demo data")
    progress.finish(f"{len(ctx.prescriptions)} prescriptions, {len(fills)} fills")


def _clinical_context(ctx: DemoContext, actor) -> None:
    rng, today = ctx.rng, ctx.today
    allergies, diagnoses, coverages, labs, encounters = [], [], [], [], []
    allergy_choices = [("Penicillin", "penicillin", "Hives", "moderate"), ("Sulfa drugs", "sulfonamide_antibiotic",
                       "Rash", "mild"), ("Codeine", "opioid_analgesic", "Nausea", "mild"), ("Lisinopril",
                       "ace_inhibitor", "Angioedema", "severe"), ("Peanuts", "", "Anaphylaxis", "severe"),
                       ("Ibuprofen", "nsaid", "GI bleed", "severe"), ("Latex", "", "Contact dermatitis", "mild")]
    from .drug_classes import THERAPEUTIC_CLASSES

    by_patient: dict[int, list] = {}
    for rx in ctx.prescriptions:
        by_patient.setdefault(rx.patient_id, []).append(rx)
    payers = [("Blue Harbor Health", "610014", "MEDDPRIME"), ("Commonwealth Care Rx", "004336", "ADV"),
              ("Medicare Part D – Evergreen", "015581", "PARTD"), ("Atlas PBM", "610502", "AT")]
    for patient in ctx.patients + ctx.animals:
        if patient.species == "human" and rng.random() < 0.35:
            substance, cls, reaction, severity = rng.choice(allergy_choices)
            allergies.append(models.Allergy(patient=patient, substance=substance,
                                            drug_class=cls if cls in THERAPEUTIC_CLASSES else "",
                                            reaction=reaction, severity=severity, source="patient"))
        if patient.species == "human" and rng.random() < 0.9:
            payer, bin_, pcn = rng.choice(payers)
            coverages.append(models.Coverage(patient=patient, payer_name=payer, bin=bin_, pcn=pcn,
                                             group=f"G{rng.randrange(1000, 9999)}",
                                             member_id=f"W{rng.randrange(10**8, 10**9)}", priority=1))
        seen_codes = set()
        for rx in by_patient.get(patient.pk, []):
            cls = rx.drug.therapeutic_class
            code = CLASS_DIAGNOSES.get(cls)
            if code and code not in seen_codes and icd10cm_is_valid(code):
                seen_codes.add(code)
                diagnoses.append(models.Diagnosis(patient=patient, code=code,
                                                  onset_date=rx.written_date - timedelta(days=rng.randrange(30, 900))))
            for loinc, name, unit, low, high in CLASS_LABS.get(cls, []):
                age_days = rng.choice([20, 60, 150, 250, 330, 420, 500])
                abnormal = rng.random() < 0.12
                value = round(rng.uniform(low, high), 1) if not abnormal else round(high * rng.uniform(1.05, 1.4), 1)
                labs.append(models.LabResult(
                    patient=patient, loinc_code=loinc, name=name, value=str(value), unit=unit,
                    reference_range=f"{low}-{high}", abnormal_flag="H" if abnormal else "N",
                    collected_at=timezone.make_aware(datetime.combine(today - timedelta(days=age_days), time(9)))))
        if patient.last_visit_date:
            encounters.append(models.Encounter(
                patient=patient, date=patient.last_visit_date, prescriber=patient.primary_prescriber,
                kind="exam" if patient.is_animal else "office_visit", facility=patient.facility))
    for model, rows in [(models.Allergy, allergies), (models.Diagnosis, diagnoses), (models.Coverage, coverages),
                        (models.LabResult, labs), (models.Encounter, encounters)]:
        for row in rows:
            if isinstance(row, models.Diagnosis):
                row.clean()  # fills the description from the code set
        bulk_create_recorded(model, rows, actor=actor, reason="Demo data")
    ctx.stdout.write(f"Clinical context: {len(allergies)} allergies, {len(diagnoses)} diagnoses, "
                     f"{len(coverages)} coverages, {len(labs)} lab results, {len(encounters)} visits.\n")
