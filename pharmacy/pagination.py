"""Queue pages at a cost that does not grow with the queue (issue 17).

- ``bounded_page``: the page's ids come from a narrow query (the queue's filter and order, no
  joins for display, no annotations), served by the queue's partial index; the rows of the page
  are then loaded by id (select_related, per-row annotations over 50 rows only). Deep pages skip
  index entries, not joined rows.
- Counts are capped: ``COUNT(*)`` over at most ``cap + 1`` rows (``SELECT … LIMIT cap + 1``), shown
  as "1,000+" past the cap. Exact for small queues, constant for large ones.
- ``capped_counts``: the same per value of a column (status chips), all in ONE query of scalar
  subqueries, each reading at most ``cap + 1`` index entries.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.paginator import InvalidPage
from django.db import connections
from django.db.models import QuerySet

COUNT_CAP = 1000
PER_PAGE = 50


def _capped_sql(qs: QuerySet, cap: int) -> tuple[str, tuple]:
    inner = qs.order_by().values("pk")[: cap + 1]
    return inner.query.sql_with_params()


def capped_count(qs: QuerySet, *, cap: int | None = None) -> int:
    """min(count, cap + 1): counts at most cap + 1 rows."""
    cap = COUNT_CAP if cap is None else cap
    return qs.order_by().values("pk")[: cap + 1].count()


def estimated_count(qs: QuerySet) -> int:
    """The planner's row estimate for ``qs`` on PostgreSQL (no scan); the exact count elsewhere."""
    import json

    connection = connections[qs.db]
    if connection.vendor != "postgresql":
        return qs.count()
    sql, params = qs.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def capped_counts(qs: QuerySet, *, field_name: str, values: Iterable[str], cap: int | None = None) -> dict[str, int]:
    """{value: min(count of rows with field = value, cap + 1)} in one query."""
    cap = COUNT_CAP if cap is None else cap
    values = list(values)
    if not values:
        return {}
    parts, params = [], []
    for value in values:
        sql, p = _capped_sql(qs.filter(**{field_name: value}), cap)
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS c)")
        params.extend(p)
    with connections[qs.db].cursor() as cur:
        cur.execute("SELECT " + ", ".join(parts), params)
        row = cur.fetchone()
    return {value: int(n) for value, n in zip(values, row, strict=True)}


def shown(n: int, cap: int | None = None) -> str:
    cap = COUNT_CAP if cap is None else cap
    return f"{cap:,}+" if n > cap else f"{n:,}"


@dataclass
class BoundedPaginator:
    per_page: int
    count: int  # capped: cap + 1 means "more than cap"
    cap: int
    last_seen: int  # rows known to exist up to the current page

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    @property
    def num_pages(self) -> int:
        known = self.last_seen if self.capped else self.count
        return max(1, math.ceil(known / self.per_page))

    @property
    def count_display(self) -> str:
        return shown(self.count, self.cap)


@dataclass
class BoundedPage:
    object_list: list
    number: int
    paginator: BoundedPaginator
    more: bool
    ids: list[int] = field(default_factory=list)

    def has_next(self) -> bool:
        return self.more

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()

    def next_page_number(self) -> int:
        if not self.more:
            raise InvalidPage("That page contains no results")
        return self.number + 1

    def previous_page_number(self) -> int:
        if self.number <= 1:
            raise InvalidPage("That page number is less than 1")
        return self.number - 1

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def bounded_page(qs: QuerySet, number, *, per_page: int | None = None, cap: int | None = None,
                 rows: Callable[[list[int]], Iterable] | None = None) -> BoundedPage:
    """One page of ``qs`` (ordered) in three queries whatever the queue's length: the capped count,
    the page's ids (+1 to know whether a next page exists), the page's rows. A page past the end
    shows the last page that has rows, like Paginator.get_page."""
    per_page = PER_PAGE if per_page is None else per_page
    cap = COUNT_CAP if cap is None else cap
    try:
        number = max(int(number), 1)
    except (TypeError, ValueError):
        number = 1
    count = capped_count(qs, cap=cap)
    if count <= cap:  # exact: clamp to the last page
        number = min(number, max(1, math.ceil(count / per_page)))
    offset = (number - 1) * per_page
    ids = list(qs.values_list("pk", flat=True)[offset: offset + per_page + 1])
    if not ids and number > 1:  # past the end of a long queue: back to page 1's ids
        number, offset = 1, 0
        ids = list(qs.values_list("pk", flat=True)[: per_page + 1])
    more, ids = len(ids) > per_page, ids[:per_page]
    loader = rows or (lambda page_ids: qs.filter(pk__in=page_ids))
    by_id = {obj.pk: obj for obj in loader(ids)} if ids else {}
    objects = [by_id[pk] for pk in ids if pk in by_id]
    paginator = BoundedPaginator(per_page=per_page, count=count, cap=cap, last_seen=offset + len(ids) + int(more))
    return BoundedPage(objects, number, paginator, more, ids)
