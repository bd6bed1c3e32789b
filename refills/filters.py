"""One FilterSet for the refill queue page and the API list."""
import django_filters

from pharmacy.models import Prescriber

from .choices import RefillStatus, RequestKind, RequestSource
from .models import RefillRequest


class RefillRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RefillStatus.choices, distinct=False)
    kind = django_filters.ChoiceFilter(choices=RequestKind.choices)
    source = django_filters.ChoiceFilter(choices=RequestSource.choices)
    urgent = django_filters.BooleanFilter(field_name="is_urgent", label="Urgent only")
    prescriber = django_filters.ModelChoiceFilter(field_name="prescription__prescriber",
                                                  queryset=Prescriber.objects.order_by("last_name"))
    patient = django_filters.NumberFilter(field_name="patient_id", label="Patient id")
    prescription = django_filters.NumberFilter(field_name="prescription_id", label="Prescription id")

    class Meta:
        model = RefillRequest
        fields = ["status", "kind", "source", "pharmacy", "prescriber", "urgent", "patient", "prescription"]
