"""End-to-end HL7 v2 ingest over MLLP on PostgreSQL, with 1, 4 and 16 concurrent senders.

    python bench/ingest.py                      # 240 messages per run
    python bench/ingest.py --messages 60        # quicker
    BENCH_DATABASE_URL=postgres://u:p@host/db python bench/ingest.py

Uses its own database (default ``rxhub_bench_ingest`` on 127.0.0.1, created when missing). Each
message is an ADT^A03 discharge (PID, AL1, three OBX medication lines) for a patient linked to the
sending EHR who has two active prescriptions, so every message is matched, compared and opens a
reconciliation task with discrepancies.

Per sender count it prints messages per second, from the same run:
- stored → ACK: the listener stores the raw message and answers a commit ACK (CA);
- → task: the listener stores, reads, matches, compares, opens the task, then answers AA;
- bare hl7.parse: python-hl7 parsing the same messages in one thread, no I/O — the floor the
  ratio is against (ratio = hl7.parse rate ÷ ingest rate).
The listener runs in this process (asyncio loop + its worker threads), senders are threads with
one connection each using python-hl7's MLLPClient; every ACK is checked.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://rxhub:rxhub@127.0.0.1:5432/rxhub_bench_ingest"
PATIENTS = 50


def ensure_database(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def message(run: str, n: int, patient: int) -> str:
    return "\r".join([
        f"MSH|^~\\&|EPIC|BENCHHOSP|RXHUB|PHARM|20261130101500||ADT^A03^ADT_A03|{run}-{n}|P|2.5.1",
        "EVN|A03|20261130101500",
        f"PID|1||B{patient:05d}^^^BENCHHOSP^MR||BENCH{patient}^PAT||19600105|F",
        "PV1|1|I|4W^401^A",
        "AL1|1|DA|7980^Penicillin G^RXNORM|SV|Hives",
        "OBX|1|TX|10183-2^Hospital discharge medications^LN|1|WARFARIN 5MG DAILY||||||F",
        "OBX|2|TX|10183-2^Hospital discharge medications^LN|2|METFORMIN 500MG BID||||||F",
        "OBX|3|TX|10183-2^Hospital discharge medications^LN|3|ATORVASTATIN 40MG QHS||||||F",
    ]) + "\r"


def setup_patients() -> None:
    from django.db import transaction

    from pharmacy.actors import system_actor
    from pharmacy.catalog import drug_catalog_load
    from pharmacy.models import Drug
    from reconciliation.models import EhrLink
    from tests.factories import PatientFactory, PrescriberFactory, PrescriptionFactory

    if EhrLink.objects.filter(ehr_system="BENCHHOSP").count() >= PATIENTS:
        return
    with transaction.atomic():
        drug_catalog_load(actor=system_actor("system:maintenance"))
        warfarin = Drug.objects.filter(name="warfarin", strength="5 mg").first()
        lisinopril = Drug.objects.filter(name="lisinopril", strength="10 mg").first()
        prescriber = PrescriberFactory()
        for i in range(PATIENTS):
            patient = PatientFactory(last_name=f"Bench{i}", primary_prescriber=prescriber,
                                     mrn=f"BENCH-{uuid.uuid4().hex[:10]}")
            PrescriptionFactory(patient=patient, drug=warfarin, prescriber=prescriber, sig="1 tablet daily")
            PrescriptionFactory(patient=patient, drug=lisinopril, prescriber=prescriber, sig="1 tablet daily")
            EhrLink.objects.create(patient=patient, ehr_system="BENCHHOSP", external_id=f"B{i:05d}")


def send_all(port: int, messages: list[str], senders: int) -> float:
    from hl7.client import MLLPClient

    chunks = [messages[i::senders] for i in range(senders)]
    errors: list[str] = []
    barrier = threading.Barrier(senders + 1)

    def sender(chunk: list[str]) -> None:
        with MLLPClient("127.0.0.1", port) as client:
            barrier.wait()
            for text in chunk:
                ack = client.send_message(text).decode()
                if "MSA|AA|" not in ack and "MSA|CA|" not in ack:
                    errors.append(ack.replace("\r", " | ")[:200])

    threads = [threading.Thread(target=sender, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} messages were not acknowledged AA/CA, e.g. {errors[0]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=240)
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=4, help="listener processing threads")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
    os.environ.setdefault("DJANGO_HTTPS", "0")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import hl7

    from pharmacy.interop.sig import parse_sig
    from reconciliation.mllp import BackgroundMLLPServer
    from reconciliation.models import InboundMessage, ReconciliationTask

    setup_patients()
    parse_sig("warfarin 5 mg daily")  # load the drug dictionary once, outside the timings
    print(
        f"{args.messages} ADT^A03 messages per run; listener workers: {args.workers}; "
        f"PostgreSQL {url.rsplit('/', 1)[-1]}"
    )
    print(f"{'senders':>7} | {'stored→ACK msg/s':>16} | {'→task msg/s':>11} | {'hl7.parse msg/s':>15} | "
          f"{'ratio store':>11} | {'ratio task':>10}")
    for senders in args.senders:
        rates = {}
        for mode in ("store", "task"):
            run = uuid.uuid4().hex[:8]
            messages = [message(run, n, n % PATIENTS) for n in range(args.messages)]
            tasks_before = ReconciliationTask.objects.count()
            with BackgroundMLLPServer(port=0, workers=args.workers, idle_timeout=60,
                                      process=(mode == "task")) as server:
                elapsed = send_all(server.port, messages, senders)
            stored = InboundMessage.objects.filter(control_id__startswith=f"{run}-").count()
            assert stored == args.messages, (stored, args.messages)
            if mode == "task":
                opened = ReconciliationTask.objects.count() - tasks_before
                assert opened == args.messages, (opened, args.messages)
            rates[mode] = args.messages / elapsed
        start = time.perf_counter()
        for text in messages:
            hl7.parse(text)
        parse_rate = args.messages / (time.perf_counter() - start)
        print(f"{senders:>7} | {rates['store']:>16.1f} | {rates['task']:>11.1f} | {parse_rate:>15.0f} | "
              f"{parse_rate / rates['store']:>10.0f}x | {parse_rate / rates['task']:>9.0f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
