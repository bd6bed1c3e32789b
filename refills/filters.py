"""One FilterSet for the refill queue page and the API list.

The page renders its own controls (status chips with counts, one search box, plain toggles), so
no select shows `---------` and no toggle offers "Unknown"; every choice stays in the URL."""
import django_filters
from django.db.models import Q

from pharmacy.models import Prescriber

from .choices import RefillStatus, RequestKind, RequestSource
from .models import RefillRequest


def _on(value) -> bool:
    return value is True or str(value).lower() in {"1", "true", "on", "yes"}


class RefillRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RefillStatus.choices, distinct=False)
    kind = django_filters.ChoiceFilter(choices=RequestKind.choices)
    source = django_filters.ChoiceFilter(choices=RequestSource.choices)
    urgent = django_filters.BooleanFilter(field_name="is_urgent", label="Urgent only")
    prescriber = django_filters.ModelChoiceFilter(field_name="prescription__prescriber",
                                                  queryset=Prescriber.objects.order_by("last_name"))
    patient = django_filters.NumberFilter(field_name="patient_id", label="Patient id")
    prescription = django_filters.NumberFilter(field_name="prescription_id", label="Prescription id")
    q = django_filters.CharFilter(method="search", label="Patient or drug")
    mine = django_filters.CharFilter(method="claimed_by_me", label="Claimed by me")
    unclaimed = django_filters.CharFilter(method="not_claimed", label="Unclaimed")
    routine = django_filters.CharFilter(method="routine_only", label="Routine refills")

    class Meta:
        model = RefillRequest
        fields = ["status", "kind", "source", "pharmacy", "prescriber", "urgent", "patient", "prescription"]

    def search(self, queryset, name, value):
        """Patient name (either order, "Last, First" too), MRN, birth date (YYYY-MM-DD) or drug name."""
        words = [w for w in value.replace(",", " ").split() if w]
        for word in words[:5]:
            queryset = queryset.filter(
                Q(patient__last_name__icontains=word) | Q(patient__first_name__icontains=word)
                | Q(patient__mrn__iexact=word) | Q(prescription__drug__name__icontains=word)
                | Q(prescription__rx_number__iexact=word)
                | (Q(patient__birth_date=word) if _is_date(word) else Q(pk__in=[])))
        return queryset

    def claimed_by_me(self, queryset, name, value):
        user = getattr(self.request, "user", None)
        return queryset.filter(claimed_by=user) if _on(value) and user is not None else queryset

    def not_claimed(self, queryset, name, value):
        return queryset.filter(claimed_by__isnull=True) if _on(value) else queryset

    def routine_only(self, queryset, name, value):
        """Refills (not renewals) with no eligibility finding and no controlled substance: the ones a
        pharmacist clears with one key. Allergy flags still show on the request and ask to confirm."""
        if not _on(value):
            return queryset
        return queryset.filter(kind=RequestKind.REFILL, prescription__dea_schedule="none", eligibility=[])


def _is_date(text: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
