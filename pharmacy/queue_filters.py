"""Filters a person would use on a queue page (issue 11 item 6): status chips with capped counts,
a patient/drug search and plain toggles, all kept in the URL. Shared by the workflow queues (the
refill queue's pattern, made generic: the core names no app, each queue passes its statuses)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from django.db.models import Q

from pharmacy import pagination
from pharmacy.pagination import shown


def query_with(query, **changes) -> str:
    """The query string with ``changes`` applied (None drops a key, a list sets every value), page reset."""
    data = query.copy()
    data.pop("page", None)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, list):
            data.setlist(key, value)
        else:
            data[key] = value
    return data.urlencode()


def _total(counts: dict[str, int], statuses: Iterable[str]) -> str:
    ns = [counts.get(s, 0) for s in statuses]
    if all(n <= pagination.COUNT_CAP for n in ns):
        return f"{sum(ns):,}"
    return f"{sum(min(n, pagination.COUNT_CAP) for n in ns):,}+"


def status_chips(query, counts: dict[str, int], *, choices: Sequence[tuple[str, str]],
                 chip_statuses: Iterable[str], default_statuses: Iterable[str]) -> list[dict]:
    """"Open" (the queue's default statuses), each chip status, "All": label, count, URL, current."""
    chosen = set(query.getlist("status"))
    labels = dict(choices)
    chips = [{"label": "Open", "count": _total(counts, default_statuses),
              "url": "?" + query_with(query, status=None), "current": not chosen}]
    for status in chip_statuses:
        chips.append({"label": labels[status], "count": shown(counts.get(status, 0)),
                      "url": "?" + query_with(query, status=[status]), "current": chosen == {status}})
    chips.append({"label": "All", "count": _total(counts, labels),
                  "url": "?" + query_with(query, status=list(labels)), "current": chosen == set(labels)})
    return chips


def toggles(query, specs: Iterable[tuple[str, str, str]]) -> list[dict]:
    """(name, value, label) checkboxes, on when the URL carries them."""
    return [{"name": name, "value": value, "label": label, "on": bool(query.get(name))}
            for name, value, label in specs]


def _is_date(word: str) -> bool:
    try:
        date.fromisoformat(word)
    except ValueError:
        return False
    return True


def patient_drug_search(queryset, value: str, *, patient: str = "patient", drug: str | None = "drug__name",
                        extra: Iterable[str] = (), extra_q=None):
    """Patient name (either order, "Last, First" too), MRN, birth date (YYYY-MM-DD) or drug name;
    every word must match one of them (at most five words)."""
    words = [w for w in (value or "").replace(",", " ").split() if w]
    for word in words[:5]:
        cond = (Q(**{f"{patient}__last_name__icontains": word}) | Q(**{f"{patient}__first_name__icontains": word})
                | Q(**{f"{patient}__mrn__iexact": word}))
        if drug:
            cond |= Q(**{f"{drug}__icontains": word})
        if extra_q is not None:  # e.g. an Exists() over related rows (no join that repeats rows)
            cond |= extra_q(word)
        for path in extra:
            cond |= Q(**{path: word})
        if _is_date(word):
            cond |= Q(**{f"{patient}__birth_date": word})
        queryset = queryset.filter(cond)
    return queryset
