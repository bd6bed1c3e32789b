"""Serializers for the core domain. Each runs the model's own validation (field validators,
``clean()``, constraints) so the API refuses exactly what forms and admin refuse, naming the field."""
from __future__ import annotations

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from pharmacy import models
from pharmacy.actors import save_with_history
from pharmacy.roles import ADMIN, has_role
from pharmacy.scoping import is_partner, scope_patients, scope_to_pharmacy
from pharmacy.services import fill_record
from pharmacy.validators import normalize_ndc


def scope_related_fields(fields: dict, user) -> dict:
    """A partner (integrator account) may point a record only at its own pharmacies, their
    prescriptions and patients: other ids answer 400 "does not exist" (issue 14 item 3)."""
    if user is None or not is_partner(user):
        return fields
    for field in fields.values():
        queryset = getattr(field, "queryset", None)
        if field.read_only or queryset is None:
            continue
        if queryset.model is models.Pharmacy:
            field.queryset = scope_to_pharmacy(queryset, user, pharmacy_path="pk")
        elif queryset.model is models.Prescription:
            field.queryset = scope_to_pharmacy(queryset, user)
        elif queryset.model is models.Patient:
            field.queryset = scope_patients(queryset, user)
    return fields


class PartnerScopedMixin:
    """Serializers with related fields: the request's partner user sees only its own choices.
    Pass ``context={"request": request}``."""

    def get_fields(self):
        request = self.context.get("request")
        return scope_related_fields(super().get_fields(), getattr(request, "user", None))


class ModelCleanSerializer(PartnerScopedMixin, serializers.ModelSerializer):
    """ModelSerializer + ``Model.full_clean()`` + history stamped with the acting user."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        if self.instance is not None:
            instance = copy.copy(self.instance)
            for key, value in attrs.items():
                setattr(instance, key, value)
        else:
            instance = model(**attrs)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc
        # Keep what clean() normalised (NDC, ICD-10 dots, descriptions …).
        for name in set(attrs) | set(self.normalised_fields):
            attrs[name] = getattr(instance, name)
        return attrs

    normalised_fields: tuple[str, ...] = ()

    def _actor(self):
        request = self.context.get("request")
        return request.user if request is not None else None

    def create(self, validated_data):
        instance = self.Meta.model(**validated_data)
        label = self.Meta.model._meta.verbose_name
        return save_with_history(instance, actor=self._actor(), reason=f"{label} created through the API")

    def update(self, instance, validated_data):
        for key, value in validated_data.items():
            setattr(instance, key, value)
        label = self.Meta.model._meta.verbose_name
        changed = ", ".join(sorted(validated_data)) or "nothing"
        return save_with_history(
            instance, actor=self._actor(), reason=f"{label} updated through the API ({changed})",
            update_fields=list(validated_data),
        )


class FacilitySerializer(ModelCleanSerializer):
    class Meta:
        model = models.Facility
        fields = ["id", "code", "name", "kind", "phone"]


class PatientSerializer(ModelCleanSerializer):
    facility = serializers.SlugRelatedField(
        slug_field="code", queryset=models.Facility.objects.all(), required=False,
        help_text="Facility code; defaults to the pharmacy's main facility.",
    )

    class Meta:
        model = models.Patient
        fields = [
            "id", "mrn", "facility", "first_name", "last_name", "birth_date", "sex", "species", "breed",
            "weight_kg", "owner_first_name", "owner_last_name", "phone", "email", "address_line1", "city",
            "state", "postal_code", "preferred_pharmacy", "contact_preference", "consent_to_messages",
            "last_visit_date", "primary_prescriber", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        validators = []  # (facility, mrn) uniqueness is checked by full_clean with the default facility

    def validate(self, attrs):
        user = self._actor()
        if self.instance is None and user is not None and is_partner(user) and not attrs.get("preferred_pharmacy"):
            raise serializers.ValidationError({"preferred_pharmacy": [serializers.ErrorDetail(
                "An integrator account creates patients for one of its own pharmacies.", code="required")]})
        if self.instance is None and not attrs.get("facility"):
            from pharmacy.services import default_facility

            attrs["facility"] = default_facility()
        return super().validate(attrs)


class PrescriberSerializer(ModelCleanSerializer):
    class Meta:
        model = models.Prescriber
        fields = [
            "id", "npi", "dea_number", "first_name", "last_name", "credentials", "is_veterinarian",
            "state_license_number", "state_license_state", "email", "phone", "practice", "link_preference",
        ]


class PharmacySerializer(ModelCleanSerializer):
    class Meta:
        model = models.Pharmacy
        fields = [
            "id", "ncpdp_id", "npi", "name", "phone", "address_line1", "city", "state", "postal_code",
            "outbound_transport", "outbound_endpoint", "is_active",
        ]
        # Where a pharmacy's NCPDP traffic (PHI) goes is an admin's decision (issue 14 item 3).
        admin_only_fields = ("outbound_transport", "outbound_endpoint")

    def get_fields(self):
        fields = super().get_fields()
        user = self._actor()
        if user is None or not has_role(user, ADMIN):
            for name in self.Meta.admin_only_fields:
                fields[name].read_only = True
        return fields


class DrugSerializer(ModelCleanSerializer):
    ndc = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=13,
        help_text="11-digit NDC, or hyphenated 4-4-2 / 5-3-2 / 5-4-1 (normalised to 11 digits).",
    )

    class Meta:
        model = models.Drug
        fields = [
            "id", "name", "strength", "dose_form", "route", "ndc", "rxcui", "dea_schedule", "therapeutic_class",
            "is_maintenance", "is_high_alert", "is_urgent", "brand_names", "species", "is_active",
        ]

    def validate_ndc(self, value):
        if not value:
            return None
        try:
            return normalize_ndc(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages[0], code=exc.code) from exc


class PrescriptionSerializer(ModelCleanSerializer):
    dea_schedule = serializers.CharField(read_only=True)

    class Meta:
        model = models.Prescription
        fields = [
            "id", "patient", "prescriber", "drug", "rx_number", "sig", "quantity", "days_supply",
            "refills_authorized", "refills_remaining", "written_date", "expiration_date", "pharmacy", "status",
            "indication_code", "dea_schedule", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
    normalised_fields = ("expiration_date",)

    def create(self, validated_data):
        """A new prescription is recorded by pharmacy.services.prescription_create (its allergy
        flags are raised with the same actor)."""
        from pharmacy.services import prescription_create

        return prescription_create(prescription=models.Prescription(**validated_data), actor=self._actor(),
                                   reason="prescription created through the API")

    def update(self, instance, validated_data):
        """One write path: pharmacy (CancelRx to the old one), status (transition table) and refills
        go through pharmacy.services.prescription_update, which records why."""
        from pharmacy.services import prescription_update

        changed = ", ".join(sorted(validated_data)) or "nothing"
        return prescription_update(prescription_id=instance.pk, actor=self._actor(),
                                   reason=f"prescription updated through the API ({changed})", **validated_data)


class FillSerializer(ModelCleanSerializer):
    class Meta:
        model = models.Fill
        fields = ["id", "prescription", "fill_date", "quantity", "days_supply", "pharmacy", "status",
                  "picked_up_at", "external_reference"]

    def create(self, validated_data):
        """Through the core service (history, and the apps' fill hooks in the same transaction)."""
        return fill_record(fill=models.Fill(**validated_data), actor=self._actor(),
                           reason="fill created through the API")


class AllergySerializer(ModelCleanSerializer):
    class Meta:
        model = models.Allergy
        fields = ["id", "patient", "substance", "rxcui", "drug_class", "reaction", "severity", "status", "source",
                  "recorded_date"]


class DiagnosisSerializer(ModelCleanSerializer):
    class Meta:
        model = models.Diagnosis
        fields = ["id", "patient", "code", "description", "onset_date", "status", "source"]


class CoverageSerializer(ModelCleanSerializer):
    class Meta:
        model = models.Coverage
        fields = ["id", "patient", "payer_name", "bin", "pcn", "group", "member_id", "priority", "is_active"]


class LabResultSerializer(ModelCleanSerializer):
    class Meta:
        model = models.LabResult
        fields = ["id", "patient", "loinc_code", "name", "value", "unit", "reference_range", "abnormal_flag",
                  "collected_at", "source"]


class EncounterSerializer(ModelCleanSerializer):
    class Meta:
        model = models.Encounter
        fields = ["id", "patient", "date", "kind", "prescriber", "facility", "notes"]

    def create(self, validated_data):
        from pharmacy.services import encounter_record

        return encounter_record(actor=self._actor(), reason="Encounter recorded through the API", **validated_data)


class OutboxMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.OutboxMessage
        fields = ["id", "kind", "message_id", "status", "attempts", "last_error", "created_at", "payload",
                  "transport", "destination", "sent_at", "next_attempt_at", "response", "related_model", "related_id"]
        read_only_fields = fields
