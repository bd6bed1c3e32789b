from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .. import registry
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

# Apps register their viewsets on the same router and may add plain paths (their registered
# ``api_register(router)`` and ``api_urlpatterns``, pharmacy/registry.py).
extra = []
for contribution in registry.contributions():
    if contribution.api_register is not None:
        contribution.api_register(router)
    extra.extend(contribution.api_urlpatterns)

urlpatterns = [
    path("auth/token/", views.ObtainTokenView.as_view(), name="api-token"),
    *extra,
    path("", include(router.urls)),
]
