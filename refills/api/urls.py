"""Refill endpoints under /api/v1/ (the core router picks up register(); plain paths below)."""
from . import views

urlpatterns: list = []


def register(router) -> None:
    router.register("refill-requests", views.RefillRequestViewSet, basename="refill-request")
