"""One FilterSet for the PA queue page and the API list."""

import django_filters
from django.utils import timezone

from .choices import DECIDED_STATUSES, Adapter, CaseStatus, RolloutMode, Trigger
from .models import PACase, Payer


class PACaseFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CaseStatus.choices, distinct=False)
    payer = django_filters.ModelChoiceFilter(queryset=Payer.objects.order_by("name"))
    mode = django_filters.ChoiceFilter(
        field_name="rollout_mode", choices=RolloutMode.choices, label="Rollout mode"
    )
    adapter = django_filters.ChoiceFilter(choices=Adapter.choices)
    trigger = django_filters.ChoiceFilter(choices=Trigger.choices)
    automatic = django_filters.BooleanFilter(
        field_name="submitted_automatically", label="Submitted automatically"
    )
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Overdue only")
    patient = django_filters.NumberFilter(field_name="patient_id", label="Patient id")
    prescription = django_filters.NumberFilter(field_name="prescription_id", label="Prescription id")
    drug = django_filters.CharFilter(field_name="drug__name", lookup_expr="icontains", label="Drug")
    q = django_filters.CharFilter(method="search", label="Patient or drug")
    expedited = django_filters.BooleanFilter(field_name="is_expedited", label="Expedited only")

    class Meta:
        model = PACase
        fields = [
            "status",
            "payer",
            "mode",
            "adapter",
            "trigger",
            "automatic",
            "overdue",
            "patient",
            "prescription",
            "drug",
            "q",
            "expedited",
        ]

    def search(self, queryset, name, value):
        from pharmacy.queue_filters import patient_drug_search

        return patient_drug_search(queryset, value, extra=("prescription__rx_number__iexact",))

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        overdue = queryset.filter(decision_due_at__lt=timezone.now()).exclude(status__in=DECIDED_STATUSES)
        return overdue if value else queryset.exclude(pk__in=overdue.values("pk"))
