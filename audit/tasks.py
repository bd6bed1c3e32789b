"""django-q2 tasks for the audit trail (thin)."""
SCHEDULES = [
    # Daily anchor of the chain head into the append-only anchor file (audit/anchor.py).
    {"name": "rxhub:audit-anchor", "func": "audit.tasks.anchor_audit_chain", "schedule_type": "D", "repeats": -1},
]


def anchor_audit_chain() -> str:
    from .anchor import anchor_now

    anchored = anchor_now()
    return f"anchored #{anchored[0]}" if anchored else "chain empty: nothing to anchor"
