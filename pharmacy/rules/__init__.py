"""Clinical facts more than one workflow app needs, kept once in the core (docs/architecture.md).

Pure modules (no ORM, no settings reads): ``supply`` (days supply, run-out, PDC/MPR),
``controlled`` (DEA schedule refill limits, 21 CFR 1306), ``allergy`` (allergy and
cross-sensitivity conflicts), ``drug_names`` (ingredient names and the catalog lookup) and
``facts`` (core rows → the plain records the pure modules take), ``authority`` (who may authorize
what, and the limits on what is authorized: 21 CFR 1306, 1311, collaborative practice agreements).
"""
