"""Reconciliation endpoints under /api/v1/ (the core router picks up register(); plain paths below)."""
from django.urls import path

from . import views

urlpatterns = [
    path("hl7/", views.HL7View.as_view(), name="hl7-inbound"),
    path("fhir/", views.FHIRView.as_view(), name="fhir-inbound"),
    path("documents/", views.DocumentView.as_view(), name="document-inbound"),
]


def register(router) -> None:
    router.register("inbound-messages", views.InboundMessageViewSet, basename="inbound-message")
    router.register("reconciliation-tasks", views.ReconciliationTaskViewSet, basename="reconciliation-task")
    router.register("discrepancies", views.DiscrepancyViewSet, basename="discrepancy")
