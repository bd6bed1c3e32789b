"""FilterSets shared by the HTML lists and the API lists."""
import django_filters
from django.db.models import Q

from . import models


class PatientFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name, MRN, phone or e-mail")
    birth_date = django_filters.DateFilter()

    class Meta:
        model = models.Patient
        fields = ["mrn", "last_name", "species", "facility", "preferred_pharmacy", "birth_date"]

    def search(self, queryset, name, value):
        from .selectors import patient_search_q

        return queryset.filter(patient_search_q(value))


class PrescriptionFilter(django_filters.FilterSet):
    class Meta:
        model = models.Prescription
        fields = ["patient", "prescriber", "drug", "pharmacy", "status", "dea_schedule"]


class DrugFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Name or brand")

    class Meta:
        model = models.Drug
        fields = ["name", "ndc", "rxcui", "dea_schedule", "therapeutic_class", "is_maintenance", "is_high_alert",
                  "species"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(brand_names__icontains=value))
