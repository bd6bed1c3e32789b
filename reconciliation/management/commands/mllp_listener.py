"""``manage.py mllp_listener [--host 127.0.0.1] [--port 2575]``: receive HL7 v2 over MLLP."""
from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand

from reconciliation.mllp import MLLPServer


class Command(BaseCommand):
    help = "Run the MLLP listener: HL7 v2 messages are stored, processed and acknowledged (AA/AE/AR)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2575)
        parser.add_argument("--workers", type=int, default=None, help="processing threads (default RXHUB setting)")

    def handle(self, *args, host, port, workers, **options):
        asyncio.run(self._run(host, port, workers))

    async def _run(self, host, port, workers):
        server = MLLPServer(host, port, workers=workers)
        await server.start()
        self.stdout.write(self.style.SUCCESS(f"MLLP listener on {host}:{server.port} (Ctrl-C to stop)"))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.aclose()
        self.stdout.write("MLLP listener stopped.")
