"""Create the five role groups with their permissions (kept in sync after each migrate)."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = ["pharmacist", "technician", "prescriber", "admin", "integrator"]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; create this app's now so the
    # groups can be given them in the same migration.
    pharmacy_config = apps.get_app_config("pharmacy")
    pharmacy_config.models_module = True
    create_permissions(pharmacy_config, apps=apps, verbosity=0)
    pharmacy_config.models_module = None

    from pharmacy.roles import ROLE_PERMISSIONS

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [p.split(".", 1)[1] for p in ROLE_PERMISSIONS[role] if p.startswith("pharmacy.")]
        group.permissions.add(*Permission.objects.filter(content_type__app_label="pharmacy", codename__in=codenames))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("pharmacy", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
