from django.urls import path

from . import views

app_name = "reconciliation"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("<int:pk>/", views.task_detail, name="task-detail"),
    path("discrepancies/<int:pk>/accept/", views.accept, name="accept"),
    path("discrepancies/<int:pk>/reject/", views.reject, name="reject"),
    path("inbound/", views.inbound_list, name="inbound-list"),
    path("inbound/<int:pk>/", views.inbound_detail, name="inbound-detail"),
    path("inbound/<int:pk>/retry/", views.inbound_retry, name="inbound-retry"),
    path("matches/", views.match_list, name="match-list"),
    path("matches/<int:pk>/resolve/", views.match_resolve, name="match-resolve"),
    path("matches/<int:pk>/create-patient/", views.match_create_patient, name="match-create-patient"),
    path("patients/<int:pk>/pull/", views.pull, name="pull"),
    path("links/<int:pk>/consent/", views.link_consent, name="link-consent"),
]
