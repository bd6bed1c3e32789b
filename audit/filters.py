"""Filters of the PHI access log and audit event pages."""

import django_filters
from django import forms

from .models import AuditEvent, PhiAccess


class PhiAccessFilter(django_filters.FilterSet):
    username = django_filters.CharFilter(field_name="username", lookup_expr="icontains", label="User")
    patient_id = django_filters.NumberFilter(field_name="patient_id", label="Patient ID")
    what = django_filters.CharFilter(field_name="what", lookup_expr="icontains", label="What")
    ip_address = django_filters.CharFilter(field_name="ip_address", label="IP address")
    since = django_filters.DateFilter(
        field_name="at", lookup_expr="date__gte", label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = django_filters.DateFilter(
        field_name="at", lookup_expr="date__lte", label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = PhiAccess
        fields: list[str] = []


class AuditEventFilter(django_filters.FilterSet):
    kind = django_filters.CharFilter(field_name="kind", lookup_expr="istartswith", label="Kind")
    actor = django_filters.CharFilter(field_name="actor_label", lookup_expr="icontains", label="Actor")
    patient_id = django_filters.NumberFilter(field_name="patient_id", label="Patient ID")
    since = django_filters.DateFilter(
        field_name="occurred_at",
        lookup_expr="date__gte",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = django_filters.DateFilter(
        field_name="occurred_at",
        lookup_expr="date__lte",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []
