"""Where FHIR R4 (4.0.1) is strict, so are we: codes of required bindings and primitive formats.

Pure: no Django. ``check_resource`` raises ``ClinicalParseError("<path>.<element>: …")`` — the path
prefix becomes the OperationOutcome ``expression`` of the 400 answer — for
  * a code outside a **required** value set (R4 §2.1.0.4 "required: to be conformant, the concept in
    this element SHALL be from the specified value set"): MedicationRequest.status / intent,
    MedicationStatement.status, MedicationDispense.status, AllergyIntolerance.clinicalStatus /
    verificationStatus / criticality / type / category / reaction.severity, Patient.gender;
  * a malformed primitive (R4 §2.24.0.1 datatypes): date, dateTime, instant (regular expressions of
    the specification), boolean (JSON true/false), decimal / integer (JSON numbers).
Everything else stays tolerant: elements this reader does not know (R4-only content, unknown
extensions, modifier extensions) are not looked at.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pharmacy.interop.clinical import ClinicalParseError

__all__ = ["check_resource", "REQUIRED_CODES"]

# Required bindings (FHIR R4 value sets; http://hl7.org/fhir/R4/valueset-*.html).
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("MedicationRequest", "status"): frozenset(
        {"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}),
    ("MedicationRequest", "intent"): frozenset(
        {"proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order",
         "option"}),
    ("MedicationStatement", "status"): frozenset(
        {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"}),
    ("MedicationDispense", "status"): frozenset(
        {"preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error", "stopped",
         "declined", "unknown"}),
    ("AllergyIntolerance", "criticality"): frozenset({"low", "high", "unable-to-assess"}),
    ("AllergyIntolerance", "type"): frozenset({"allergy", "intolerance"}),
    ("AllergyIntolerance", "category"): frozenset({"food", "medication", "environment", "biologic"}),
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
}
# Required CodeableConcept bindings: the coding of the binding's code system must hold a listed code.
REQUIRED_CONCEPTS: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("AllergyIntolerance", "clinicalStatus"): (
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        frozenset({"active", "inactive", "resolved"})),
    ("AllergyIntolerance", "verificationStatus"): (
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
        frozenset({"unconfirmed", "confirmed", "refuted", "entered-in-error"})),
}
REACTION_SEVERITY = frozenset({"mild", "moderate", "severe"})

# R4 primitive regular expressions (http://hl7.org/fhir/R4/datatypes.html).
_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?")
_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?")
_INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))")

# Element name → primitive type, for the elements the clinical readers use.
_DATE_KEYS = {"birthDate"}
_DATETIME_KEYS = {"authoredOn", "effectiveDateTime", "recordedDate", "onsetDateTime", "abatementDateTime",
                  "whenHandedOver", "whenPrepared", "dateAsserted", "lastOccurrence", "start", "end",
                  "deceasedDateTime", "onset", "occurrenceDateTime", "date", "created"}
_INSTANT_KEYS = {"lastUpdated", "timestamp", "issued"}
_BOOLEAN_KEYS = {"doNotPerform", "asNeededBoolean", "active", "deceasedBoolean", "multipleBirthBoolean",
                 "reportedBoolean", "wasSubstituted", "allowedBoolean"}
_DECIMAL_KEYS = {"period", "periodMax", "duration", "durationMax"}  # Timing.repeat decimals
_INTEGER_KEYS = {"frequency", "frequencyMax", "numberOfRepeatsAllowed", "count", "countMax"}
# Complex types whose "value" is a decimal (Quantity and its profiles).
_QUANTITY_KEYS = {"doseQuantity", "quantity", "low", "high", "numerator", "denominator", "valueQuantity",
                  "expectedSupplyDuration", "daysSupply", "rateQuantity", "maxDosePerAdministration",
                  "maxDosePerLifetime", "initialFill", "minimumDispenseInterval", "amountQuantity"}
_SKIP = {"extension", "modifierExtension", "contained", "text", "_status"}


def _fail(path: str, message: str) -> None:
    raise ClinicalParseError(f"{path}: {message}")


def check_resource(resource: dict, path: str) -> None:
    """Raise ClinicalParseError naming the element for the first violation found."""
    rt = resource.get("resourceType")
    if not isinstance(rt, str):
        return
    for (rtype, element), codes in REQUIRED_CODES.items():
        if rtype != rt or element not in resource:
            continue
        values = resource[element] if isinstance(resource[element], list) else [resource[element]]
        for i, value in enumerate(values):
            where = f"{path}.{element}" + (f"[{i}]" if isinstance(resource[element], list) else "")
            if not isinstance(value, str):
                _fail(where, f"expected a code (JSON string), got {type(value).__name__}")
            if value not in codes:
                _fail(where, f"{value!r} is not a code of the required value set ({', '.join(sorted(codes))})")
    for (rtype, element), (system, codes) in REQUIRED_CONCEPTS.items():
        if rtype != rt or element not in resource:
            continue
        cc = resource[element]
        where = f"{path}.{element}"
        if not isinstance(cc, dict):
            _fail(where, "expected a CodeableConcept (JSON object)")
        codings = cc.get("coding") or []
        if not isinstance(codings, list):
            _fail(f"{where}.coding", "expected an array")
        for i, coding in enumerate(codings):
            if not isinstance(coding, dict):
                _fail(f"{where}.coding[{i}]", "expected a Coding (JSON object)")
            if coding.get("system") in (None, system) and coding.get("code") not in codes:
                _fail(f"{where}.coding[{i}].code",
                      f"{coding.get('code')!r} is not a code of the required value set ({', '.join(sorted(codes))})")
    if rt == "AllergyIntolerance":
        for i, reaction in enumerate(resource.get("reaction") or []):
            if isinstance(reaction, dict) and "severity" in reaction and reaction["severity"] not in REACTION_SEVERITY:
                _fail(f"{path}.reaction[{i}].severity",
                      f"{reaction['severity']!r} is not a code of the required value set (mild, moderate, severe)")
    _primitives(resource, path, parent="")


def _primitives(node: Any, path: str, parent: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SKIP or key == "resource":
                continue  # extensions stay unread; Bundle entries are checked one by one
            where = f"{path}.{key}"
            if value is None:
                _fail(where, "null is not a FHIR value (leave the element out)")
            _primitive(key, value, where, parent)
            if isinstance(value, (dict, list)):
                _primitives(value, where, key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, (dict, list)):
                _primitives(item, f"{path}[{i}]", parent)
            elif item is None:
                _fail(f"{path}[{i}]", "null is not a FHIR value")


def _primitive(key: str, value: Any, where: str, parent: str) -> None:
    if key in _INSTANT_KEYS and isinstance(value, (str, int, float, Decimal, bool)):
        if not isinstance(value, str) or not _INSTANT.fullmatch(value):
            _fail(where, f"{value!r} is not a FHIR instant (YYYY-MM-DDThh:mm:ss with a time zone)")
    elif key in _DATE_KEYS and not isinstance(value, (dict, list)):
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            _fail(where, f"{value!r} is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
    elif key in _DATETIME_KEYS and not isinstance(value, (dict, list)):
        if not isinstance(value, str) or not _DATETIME.fullmatch(value):
            _fail(where, f"{value!r} is not a FHIR dateTime (YYYY[-MM[-DD[Thh:mm:ss+zz:zz]]])")
    elif key in _BOOLEAN_KEYS and not isinstance(value, bool):
        _fail(where, f"{value!r} is not a FHIR boolean (JSON true or false)")
    elif key in _INTEGER_KEYS and not isinstance(value, (dict, list)):
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(where, f"{value!r} is not a FHIR integer (a JSON number without a fraction)")
    elif (key in _DECIMAL_KEYS and not isinstance(value, (dict, list))) or (
            key == "value" and parent in _QUANTITY_KEYS):
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            _fail(where, f"{value!r} is not a FHIR decimal (a JSON number)")
