from django.urls import path

from . import link_views, views

app_name = "refills"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("bulk-approve/", views.bulk_approve, name="bulk-approve"),
    path("<int:pk>/", views.request_detail, name="request-detail"),
    path("<int:pk>/claim/", views.claim, name="claim"),
    path("<int:pk>/approve/", views.approve, name="approve"),
    path("<int:pk>/deny/", views.deny, name="deny"),
    path("<int:pk>/forward/", views.forward, name="forward"),
    path("<int:pk>/new-prescription/", views.new_prescription, name="new-prescription"),
    path("triage/", views.triage, name="triage"),
    path("triage/<int:pk>/assign/", views.triage_assign, name="triage-assign"),
    path("triage/<int:pk>/dismiss/", views.triage_dismiss, name="triage-dismiss"),
    # Public: a prescriber's signed single-use link (the token is the credential; refills/links.py).
    path("link/done/", link_views.prescriber_link_done, name="prescriber-link-done"),
    path("link/<str:token>/", link_views.prescriber_link, name="prescriber-link"),
]
