"""PA endpoints under /api/v1/ (the core router picks up register(); plain paths below)."""

from django.urls import path

from . import views

urlpatterns = [
    path("claim-rejections/", views.ClaimRejectionView.as_view(), name="claim-rejections"),
    path("pa-responses/", views.PAResponseView.as_view(), name="pa-responses"),
]


def register(router) -> None:
    router.register("pa-cases", views.PACaseViewSet, basename="pa-case")
