from .roles import user_roles


def roles(request):
    current = user_roles(getattr(request, "user", None))
    return {"user_roles": current, "is_pharmacist": "pharmacist" in current or "admin" in current}
