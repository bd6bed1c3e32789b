"""``{{ summary|triage_rows }}``: a request's triage summary as (label, text) pairs."""
from django import template

from refills.triage import summary_rows

register = template.Library()


@register.filter
def triage_rows(summary):
    return summary_rows(summary if isinstance(summary, dict) else {})
