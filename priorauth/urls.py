from django.urls import path

from . import views

app_name = "priorauth"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("open/", views.open_case, name="open"),
    path("automatic/", views.automatic, name="automatic"),
    path("analytics/", views.analytics, name="analytics"),
    path("<int:pk>/", views.case_detail, name="case-detail"),
    path("<int:pk>/save/", views.save, name="save"),
    path("<int:pk>/answer/", views.answer, name="answer"),
    path("<int:pk>/appeal/", views.appeal, name="appeal"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/expedite/", views.expedite, name="expedite"),
    path("<int:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("<int:pk>/refresh/", views.refresh, name="refresh"),
    path("<int:pk>/attach/", views.attach, name="attach"),
    path("<int:pk>/review/", views.review, name="review"),
]
