"""One large inbound message through the whole store-first pipeline (store, dedupe, read,
process) on PostgreSQL: time and extra memory per message. Target: a 5 MB message costs ≤ 2 s and
≤ 100 MB of extra memory (issue 14; a 4.9 MB HL7 message once took 16 s and 489 MB).

    python bench/inbound_5mb.py
    BENCH_DATABASE_URL=postgres://u:p@host/db python bench/inbound_5mb.py

Uses its own database (default ``rxhub_bench_inbound`` on 127.0.0.1, created when missing). Each
shape is ingested once to warm up (drug dictionary, code paths) with another control ID, then
measured twice with fresh control IDs: wall time of ``reconciliation.services.ingest`` (untraced),
then the tracemalloc peak (Python allocations) and the process RSS growth (everything, psycopg
buffers included) of a traced run. Run it on a quiet machine: the figures are wall-clock. The
ratio column compares with hashing the same bytes once (SHA-256, the least any pipeline does).
Shapes: HL7 ORU^R01 with a 4.9 MB embedded PDF (OBX ED, the usual large HL7 message), HL7 ORU^R01
with 4.9 MB of ordinary lab OBX segments (~60,000 results), FHIR Bundle with a 4.9 MB attachment,
C-CDA with a 4.9 MB nonXMLBody, and a 6 MB HL7 message over the limit (stored cut, refused).
"""
from __future__ import annotations

import base64
import gc
import hashlib
import os
import resource
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://rxhub:rxhub@127.0.0.1:5432/rxhub_bench_inbound"
TARGET = 4_900_000


def ensure_database(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _b64(n_bytes: int) -> str:
    return base64.b64encode(os.urandom(n_bytes * 3 // 4)).decode()


def hl7_pdf(control: str, size: int = TARGET) -> bytes:
    head = [f"MSH|^~\\&|EPIC|BENCHHOSP|RXHUB|PHARM|20261130101500||ORU^R01^ORU_R01|{control}|P|2.5.1",
            "PID|1||B00001^^^BENCHHOSP^MR||BENCH1^PAT||19600105|F",
            "OBR|1||LAB1|11502-2^Laboratory report^LN|||20261130"]
    room = size - sum(len(s) + 1 for s in head) - 60
    return ("\r".join([*head, f"OBX|1|ED|11502-2^Lab report^LN||^application^pdf^Base64^{_b64(room)}||||||F"])
            + "\r").encode()


def hl7_labs(control: str, size: int = TARGET) -> bytes:
    segs = [f"MSH|^~\\&|EPIC|BENCHHOSP|RXHUB|PHARM|20261130101500||ORU^R01^ORU_R01|{control}|P|2.5.1",
            "PID|1||B00001^^^BENCHHOSP^MR||BENCH1^PAT||19600105|F",
            "OBR|1||LAB1|24323-8^Comprehensive metabolic panel^LN|||20261130"]
    total, i = sum(len(s) + 1 for s in segs), 0
    while total < size - 100:
        i += 1
        seg = f"OBX|{i}|NM|2160-0^Creatinine^LN||1.{i % 10}|mg/dL|0.6-1.3|N|||F|||20261130"
        segs.append(seg)
        total += len(seg) + 1
    return ("\r".join(segs) + "\r").encode()


def fhir_attachment(control: str, size: int = TARGET) -> bytes:
    data = _b64(size - 700)
    return ('{"resourceType": "Bundle", "id": "' + control + '", "type": "collection", "meta": {"source": '
            '"BENCHHOSP"}, "entry": [{"resource": {"resourceType": "Patient", "id": "p1", "identifier": [{"system": '
            '"urn:benchhosp:mrn", "value": "B00001"}], "name": [{"family": "Bench1", "given": ["Pat"]}], '
            '"birthDate": "1960-01-05", "gender": "female"}}, {"resource": {"resourceType": "DocumentReference", '
            '"id": "d1", "status": "current", "subject": {"reference": "Patient/p1"}, "content": [{"attachment": '
            '{"contentType": "application/pdf", "data": "' + data + '"}}]}}]}').encode()


def ccda_nonxml(control: str, size: int = TARGET) -> bytes:
    data = _b64(size - 1500)
    return (f'<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3">'
            f'<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
            f'<templateId root="2.16.840.1.113883.10.20.22.1.10"/><id root="2.16.840.1.113883.19.5" '
            f'extension="{control}"/><code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>'
            f'<title>Scanned summary</title><effectiveTime value="20261130"/>'
            f'<recordTarget><patientRole><id root="2.16.840.1.113883.19.5" extension="B00001"/><patient><name>'
            f'<given>Pat</given><family>Bench1</family></name><administrativeGenderCode code="F"/>'
            f'<birthTime value="19600105"/></patient></patientRole></recordTarget>'
            f'<custodian><assignedCustodian><representedCustodianOrganization><name>BENCHHOSP</name>'
            f'</representedCustodianOrganization></assignedCustodian></custodian>'
            f'<component><nonXMLBody><text mediaType="application/pdf" representation="B64">{data}</text>'
            f'</nonXMLBody></component></ClinicalDocument>').encode()


def oversize(control: str) -> bytes:
    return hl7_pdf(control, size=6_000_000)


SHAPES = [("HL7 ORU, embedded PDF", hl7_pdf), ("HL7 ORU, ~60k lab OBX", hl7_labs),
          ("FHIR Bundle, attachment", fhir_attachment), ("C-CDA, nonXMLBody", ccda_nonxml),
          ("HL7 6 MB (over limit)", oversize)]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 1e6


def main() -> int:
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
    from pharmacy.interop.sig import parse_sig
    from reconciliation import services

    parse_sig("warfarin 5 mg daily")  # the drug dictionary, loaded once outside the timings
    print(f"PostgreSQL {url.rsplit('/', 1)[-1]}; target ≤ 2 s and ≤ 100 MB extra per message")
    print(f"{'message':<26} | {'MB':>5} | {'status':<12} | {'ack':>3} | {'seconds':>7} | {'peak MB (py)':>12} | "
          f"{'RSS +MB':>7} | {'sha256 s':>8} | {'ratio':>6}")
    worst_s = worst_mb = 0.0
    for label, build in SHAPES:
        services.ingest(channel="folder", payload=build(f"warm-{uuid.uuid4().hex[:8]}"))  # warm-up
        payload = build(f"bench-{uuid.uuid4().hex[:8]}")
        start = time.perf_counter()
        hashlib.sha256(payload).hexdigest()
        floor = time.perf_counter() - start
        gc.collect()
        start = time.perf_counter()  # time: one run without tracemalloc (it slows Python several-fold)
        result = services.ingest(channel="folder", payload=payload, source_name="bench")
        elapsed = time.perf_counter() - start
        payload = build(f"mem-{uuid.uuid4().hex[:8]}")  # memory: another run, traced
        gc.collect()
        rss_before = rss_mb()
        tracemalloc.start()
        services.ingest(channel="folder", payload=payload, source_name="bench")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = rss_mb() - rss_before
        peak_mb = peak / 1e6
        worst_s, worst_mb = max(worst_s, elapsed), max(worst_mb, peak_mb, rss_growth)
        print(f"{label:<26} | {len(payload) / 1e6:>5.2f} | {result.message.status:<12} | {result.ack_code:>3} | "
              f"{elapsed:>7.2f} | {peak_mb:>12.1f} | {rss_growth:>7.1f} | {floor:>8.3f} | {elapsed / floor:>5.0f}x",
              flush=True)
    verdict = "holds" if worst_s <= 2 and worst_mb <= 100 else "does NOT hold"
    print(f"worst: {worst_s:.2f} s, {worst_mb:.1f} MB → the ≤ 2 s / ≤ 100 MB target {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
