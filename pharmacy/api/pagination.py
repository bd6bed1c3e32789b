from django.core.paginator import Paginator as DjangoPaginator
from rest_framework.pagination import PageNumberPagination

from pharmacy.pagination import capped_count, estimated_count

# Past this many matching rows the API's ``count`` is the planner's estimate (``count_estimated``:
# true), so a list request costs the same at 10,000 and at 1,000,000 rows (issue 17).
EXACT_COUNT_UP_TO = 1_000


class Pagination(PageNumberPagination):
    """Page numbers as before; the page's rows are found by id first (issue 17): a narrow query in
    the list's order (served by the list's index, no joins for display), then the rows with their
    related objects by id. ``count`` is exact up to EXACT_COUNT_UP_TO rows, estimated past it."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        self.count_estimated = False
        ids_qs = queryset.values_list("pk", flat=True)
        n = capped_count(queryset, cap=EXACT_COUNT_UP_TO)
        if n > EXACT_COUNT_UP_TO:
            self.count_estimated = True
            n = max(estimated_count(queryset), n)

        def paginator(object_list, per_page):
            made = DjangoPaginator(object_list, per_page)
            made.__dict__["count"] = n  # Paginator.count is a cached_property: ours, not COUNT(*)
            return made

        self.django_paginator_class = paginator
        page = super().paginate_queryset(ids_qs, request, view)
        if page is None:
            return None
        ids = list(page)
        by_id = {obj.pk: obj for obj in queryset.filter(pk__in=ids)} if ids else {}
        return [by_id[pk] for pk in ids if pk in by_id]

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_estimated"] = self.count_estimated
        return response

    def get_paginated_response_schema(self, schema):
        schema = super().get_paginated_response_schema(schema)
        schema["properties"]["count_estimated"] = {
            "type": "boolean", "description": f"count is the planner's estimate (more than {EXACT_COUNT_UP_TO:,} rows)"}
        return schema
