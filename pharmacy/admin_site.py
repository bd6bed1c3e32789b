"""The Django admin admits the `admin` role (not only staff or superusers): what each admin may see
and change there is the role's model permissions, granted by pharmacy.roles.sync_role_permissions."""
from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig


class RxAdminSite(AdminSite):
    site_header = "Rx Workflow Hub administration"
    site_title = "Rx Workflow Hub"

    def has_permission(self, request):
        from .roles import ADMIN, has_role

        user = request.user
        return user.is_active and (user.is_staff or has_role(user, ADMIN))


class RxAdminConfig(AdminConfig):
    default_site = "pharmacy.admin_site.RxAdminSite"
