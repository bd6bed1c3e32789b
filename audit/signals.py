"""Security events into the audit chain (HIPAA 45 CFR 164.312(b) audit controls;
164.308(a)(5)(ii)(C) log-in monitoring): logins, failures, lockouts, logouts, role and privilege
changes, and every change made in the admin (protocol rules, payer criteria, drugs, users …).

Receivers record *that* something happened and who did it, never patient data: admin entries carry
the model, object id and the changed field names, not the object's text."""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from .events import record_event


def _request_user():
    """The user of the request being served (simple-history's middleware keeps it), if any."""
    from simple_history.models import HistoricalRecords

    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user, request
    return None, request


def _actor_kwargs():
    user, request = _request_user()
    if user is not None:
        return {"actor": user, "request": request}
    from pharmacy.actors import system_actor

    return {"actor": system_actor("system:maintenance"), "request": request}


@receiver(user_logged_in, dispatch_uid="audit.login")
def on_login(sender, request, user, **kwargs):
    record_event(kind="login.success", actor=user, subject=user, request=request, summary="Logged in")


@receiver(user_logged_out, dispatch_uid="audit.logout")
def on_logout(sender, request, user, **kwargs):
    if user is not None and user.is_authenticated:
        record_event(kind="logout", actor=user, subject=user, request=request, summary="Logged out")


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username") or "")[:150]
    record_event(
        kind="login.failed",
        actor=None,
        actor_name=username or "anonymous",
        request=request,
        summary="Failed login",
        data={"username": username},
    )


def _on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    record_event(
        kind="login.locked_out",
        actor=None,
        actor_name=str(username or "anonymous")[:150],
        request=request,
        summary="Account locked after repeated failed logins",
        data={"username": username or ""},
    )


try:  # django-axes announces lockouts
    from axes.signals import user_locked_out

    user_locked_out.connect(_on_locked_out, dispatch_uid="audit.locked_out")
except ImportError:  # pragma: no cover
    pass


User = get_user_model()


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="audit.role_change")
def on_role_change(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from django.contrib.auth.models import Group

    if reverse:  # group.user_set.add(users…): instance is the group
        users, groups = list(User.objects.filter(pk__in=pk_set or [])), [instance.name]
    else:
        users = [instance]
        groups = (
            sorted(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
            if pk_set
            else ["(all)"]
        )
    verb = {"post_add": "granted", "post_remove": "revoked", "post_clear": "revoked"}[action]
    for user in users:
        record_event(
            kind=f"role.{verb}",
            subject=user,
            summary=f"Roles {verb} for {user.get_username()}: {', '.join(groups)}",
            data={"user": user.get_username(), "roles": groups},
            **_actor_kwargs(),
        )


PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "is_active")


@receiver(pre_save, sender=User, dispatch_uid="audit.privilege_snapshot")
def remember_privileges(sender, instance, update_fields=None, raw=False, **kwargs):
    instance._audit_before = None
    if (
        raw
        or instance.pk is None
        or (update_fields is not None and not set(update_fields) & set(PRIVILEGE_FIELDS))
    ):
        return
    instance._audit_before = User.objects.filter(pk=instance.pk).values(*PRIVILEGE_FIELDS).first()


@receiver(post_save, sender=User, dispatch_uid="audit.privilege_change")
def on_privilege_change(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    if created:
        if instance.is_superuser or instance.is_staff:
            record_event(
                kind="user.privileges_changed",
                subject=instance,
                summary=f"Created privileged user {instance.get_username()}",
                data={f: getattr(instance, f) for f in PRIVILEGE_FIELDS},
                **_actor_kwargs(),
            )
        return
    before = getattr(instance, "_audit_before", None)
    if not before:
        return
    changed = {
        f: [before[f], getattr(instance, f)] for f in PRIVILEGE_FIELDS if before[f] != getattr(instance, f)
    }
    if changed:
        record_event(
            kind="user.privileges_changed",
            subject=instance,
            summary=f"Privileges changed for {instance.get_username()}: {', '.join(changed)}",
            data={"user": instance.get_username(), "changes": changed},
            **_actor_kwargs(),
        )


ADMIN_ACTIONS = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


@receiver(post_save, sender=LogEntry, dispatch_uid="audit.admin_change")
def on_admin_change(sender, instance: LogEntry, created, raw=False, **kwargs):
    """Every admin add/change/delete (settings such as protocol rules and payer criteria live in
    the admin). The admin's change message lists field names only."""
    if not created or raw:
        return
    model = instance.content_type.model_class() if instance.content_type_id else None
    label = model._meta.label_lower if model else "unknown"
    verb = ADMIN_ACTIONS.get(instance.action_flag, "changed")
    record_event(
        kind=f"admin.{verb}",
        actor=instance.user,
        summary=f"{label} #{instance.object_id} {verb} in admin",
        data={"model": label, "object_id": instance.object_id, "change": instance.get_change_message()[:500]},
        request=_request_user()[1],
    )


def _token_model():
    from rest_framework.authtoken.models import Token

    return Token


@receiver(post_save, dispatch_uid="audit.api_token_created")
def on_api_token_created(sender, instance, created, raw=False, **kwargs):
    if raw or not created or sender is not _token_model():
        return
    record_event(kind="api_token.created", actor=instance.user, subject=instance.user,
                 summary=f"API token created for {instance.user.get_username()}",
                 data={"user": instance.user.get_username(), "token_prefix": instance.key[:4]},
                 request=_request_user()[1])


@receiver(post_delete, dispatch_uid="audit.api_token_revoked")
def on_api_token_revoked(sender, instance, **kwargs):
    if sender is not _token_model():
        return
    record_event(kind="api_token.revoked", actor=instance.user, subject=instance.user,
                 summary=f"API token revoked for {instance.user.get_username()}",
                 data={"user": instance.user.get_username(), "token_prefix": instance.key[:4]},
                 request=_request_user()[1])
