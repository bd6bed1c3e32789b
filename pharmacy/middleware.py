"""Cache-Control: no-store on every page and API answer (static files are answered before this by
WhiteNoise and keep their long cache). Pages and API answers show patient data; no browser,
proxy or shared cache may keep them (HIPAA 45 CFR 164.312(a)(1) access control, 164.502(b))."""
from __future__ import annotations

from django.utils.cache import patch_cache_control


class NoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        patch_cache_control(response, no_store=True, private=True)
        response.headers.pop("Expires", None)
        return response
