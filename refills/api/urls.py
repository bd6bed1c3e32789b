"""Refill endpoints under /api/v1/ (the core router picks up register(); plain paths below)."""
from django.urls import path

from . import ncpdp, views

urlpatterns: list = [
    path("ncpdp/", ncpdp.NcpdpInboundView.as_view(), name="ncpdp-inbound"),
    path("ncpdp/messages/", ncpdp.InboundNcpdpMessageList.as_view(), name="ncpdp-inbound-list"),
]


def register(router) -> None:
    router.register("refill-requests", views.RefillRequestViewSet, basename="refill-request")
