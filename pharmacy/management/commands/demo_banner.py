"""Prints what `make demo` serves: a headed table of the logins, the URLs and the ports."""
from django.conf import settings
from django.core.management.base import BaseCommand

from pharmacy.demo import DEMO_PASSWORD, DEMO_USERS

WHERE = {"pharmacist": "/refills/", "technician": "/refills/triage/", "prescriber": "/",
         "admin": "/admin/", "integrator": "/account/api-tokens/"}


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    return "\n".join([line, fmt.format(*headers), line, *[fmt.format(*map(str, r)) for r in rows], line])


class Command(BaseCommand):
    help = "Print the demo's logins, URLs and ports as tables (used by `make demo`)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--mllp-port", type=int, default=2575)

    def handle(self, *args, host, port, mllp_port, **options):
        base = settings.RXHUB.get("PUBLIC_BASE_URL", "").rstrip("/") or f"http://{host}:{port}"
        self.stdout.write(f"\nLogins (password for all: {DEMO_PASSWORD})\n")
        self.stdout.write(table(["user", "role", "starts at"],
                                [[u, role, base + WHERE.get(role, "/")] for u, role, *_ in DEMO_USERS]) + "\n")
        self.stdout.write("\nURLs\n")
        self.stdout.write(table(["what", "URL"], [
            ["Dashboard", base + "/"], ["Refill queue", base + "/refills/"],
            ["Patient messages to triage", base + "/refills/triage/"],
            ["Prior authorization", base + "/priorauth/"], ["Reconciliation", base + "/reconciliation/"],
            ["Patients to match", base + "/reconciliation/matches/"], ["Outbound messages", base + "/outbox/"],
            ["Django admin", base + "/admin/"], ["API docs", base + "/api/docs/"],
            ["Links in e-mails and SMS (RXHUB_PUBLIC_BASE_URL)", base + "/"],
        ]) + "\n")
        self.stdout.write("\nPorts\n")
        self.stdout.write(table(["service", "address"], [
            ["Web (HTTP)", f"{host}:{port}"],
            ["HL7 v2 over MLLP", f"{host}:{mllp_port}" if mllp_port else "off (MLLP_PORT=0)"],
        ]) + "\n")
