from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import registry, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/api-tokens/", views.api_tokens, name="api-tokens"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/retry/", views.outbox_retry, name="outbox-retry"),
    path("patients/", views.patient_search, name="patient-search"),
    path("patients/<int:pk>/", views.patient_detail, name="patient-detail"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("pharmacy.api.urls", "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# Each app contributes its pages (the URLconf it registered, mounted at /<app>/, namespaced by the app).
for contribution in registry.contributions():
    if contribution.urls is not None:
        urlpatterns.append(path(f"{contribution.app_label}/", include(contribution.urls)))

# Styled error pages with the reason and a way back (pharmacy/error_views.py).
handler403 = "pharmacy.error_views.permission_denied"
handler404 = "pharmacy.error_views.page_not_found"
handler500 = "pharmacy.error_views.server_error"
