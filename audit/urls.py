from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("phi-access/", views.access_log, name="access-log"),
    path("events/", views.event_list, name="events"),
    path("exports/", views.export_page, name="exports"),
    path("exports/<slug:name>.csv", views.export_csv, name="export"),
    path("history/<slug:app_label>/<slug:model_name>/<int:pk>/", views.timeline, name="timeline"),
]
