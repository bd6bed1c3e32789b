from importlib import import_module
from importlib.util import find_spec

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views


class APIRootView(DefaultRouter.APIRootView):
    """The list of API endpoints."""

    allowed_roles = {"read": views.READ_ALL}


class Router(DefaultRouter):
    APIRootView = APIRootView


router = Router()
router.register("patients", views.PatientViewSet, basename="patient")
router.register("prescribers", views.PrescriberViewSet, basename="prescriber")
router.register("pharmacies", views.PharmacyViewSet, basename="pharmacy")
router.register("drugs", views.DrugViewSet, basename="drug")
router.register("prescriptions", views.PrescriptionViewSet, basename="prescription")
router.register("fills", views.FillViewSet, basename="fill")
router.register("allergies", views.AllergyViewSet, basename="allergy")
router.register("diagnoses", views.DiagnosisViewSet, basename="diagnosis")
router.register("coverages", views.CoverageViewSet, basename="coverage")
router.register("lab-results", views.LabResultViewSet, basename="labresult")
router.register("encounters", views.EncounterViewSet, basename="encounter")
router.register("outbox", views.OutboxMessageViewSet, basename="outbox")

# Workflow apps register their viewsets on the same router and may add plain paths:
# <app>/api/urls.py defines register(router) and/or urlpatterns.
extra = []
for app in ("refills", "priorauth", "reconciliation", "audit"):
    if find_spec(f"{app}.api") is not None and find_spec(f"{app}.api.urls") is not None:
        module = import_module(f"{app}.api.urls")
        if hasattr(module, "register"):
            module.register(router)
        extra.extend(getattr(module, "urlpatterns", []))

urlpatterns = [
    path("auth/token/", views.ObtainTokenView.as_view(), name="api-token"),
    *extra,
    path("", include(router.urls)),
]
