"""The project's URLs plus two that fail on purpose, for the error-page browser test."""
from django.urls import path

from pharmacy.error_views import service_unavailable
from pharmacy.urls import handler403, handler404, handler500  # noqa: F401
from pharmacy.urls import urlpatterns as project_urls


def boom(request):
    raise RuntimeError("a deliberate failure for the 500 page")


def outage(request):
    return service_unavailable(request, reason="The database is not answering.", retry_after=30)


urlpatterns = [path("test-only/boom/", boom), path("test-only/outage/", outage), *project_urls]
