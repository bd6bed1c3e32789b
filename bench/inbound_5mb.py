"""One large inbound message through the whole store-first pipeline (store, dedupe, read, match,
store results with their history rows) on PostgreSQL and SQLite: wall time, CPU time and peak
extra memory per message. Target: a 5 MB message costs ≤ 2 s and ≤ 100 MB of extra memory
(issue 14; a 4.9 MB HL7 message once took 16 s and 489 MB).

    python bench/inbound_5mb.py                 # PostgreSQL and SQLite
    python bench/inbound_5mb.py --backend sqlite
    python bench/inbound_5mb.py --shape labs    # shapes whose key contains "labs"
    BENCH_DATABASE_URL=postgres://u:p@host/db python bench/inbound_5mb.py

PostgreSQL uses its own database (default ``rxhub_bench_inbound`` on 127.0.0.1, created when
missing); SQLite a fresh file in a temporary folder. The patient the messages name (BENCH1, Pat,
1960-01-05) exists, so a message is matched and processed to the end — its results stored — except
in the "waits for match" row, whose patient (NOMATCH) exists nowhere: that message is stored and
parked for a person (nothing else written). Every lab OBX has its own LOINC code (OBX-3) and its
own observation time (OBX-14), each run other times again, so no result is skipped as already on
file.

Each (backend, shape) runs in a fresh process: a small message of the same shape warms the code
paths, then the 5 MB message is ingested once untraced (wall time, this process's CPU time, peak
RSS growth over the warmed process — psycopg/SQLite buffers included), then another 5 MB message
traced (tracemalloc peak: Python allocations). The database server's CPU is in the wall time, not
in the CPU column. The ratio column compares the wall time with hashing the same bytes once
(SHA-256, the least any pipeline does). Run it on a quiet machine (`nice`, quote the load
average): the figures are wall-clock.
"""
from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://rxhub:rxhub@127.0.0.1:5432/rxhub_bench_inbound"
TARGET = 4_900_000
PATIENT = {"first_name": "Pat", "last_name": "Bench1", "birth_date": "1960-01-05", "sex": "F"}


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


def loinc(n: int) -> str:
    """The n-th LOINC-shaped code: digits, hyphen, mod-10 check digit (LOINC Users' Guide)."""
    body = str(10000 + n)
    odd, even = body[::-1][0::2], body[::-1][1::2]
    total = sum(int(c) for c in "".join(str(int(c) * 2) for c in odd)) + sum(int(c) for c in even)
    return f"{body}-{(10 - total % 10) % 10}"


def _pid(family: str) -> str:
    mrn = "B00001" if family == "BENCH1" else "N99999"  # the unknown patient's MRN is unknown too
    return f"PID|1||{mrn}^^^BENCHHOSP^MR||{family}^PAT||19600105|F"


def hl7_pdf(control: str, size: int = TARGET, family: str = "BENCH1", run: int = 0) -> bytes:
    head = [f"MSH|^~\\&|EPIC|BENCHHOSP|RXHUB|PHARM|20261130101500||ORU^R01^ORU_R01|{control}|P|2.5.1",
            _pid(family), "OBR|1||LAB1|11502-2^Laboratory report^LN|||20261130"]
    room = size - sum(len(s) + 1 for s in head) - 60
    return ("\r".join([*head, f"OBX|1|ED|11502-2^Lab report^LN||^application^pdf^Base64^{_b64(room)}||||||F"])
            + "\r").encode()


def hl7_labs(control: str, size: int = TARGET, family: str = "BENCH1", run: int = 0) -> bytes:
    """~60,000 numeric OBX at 4.9 MB, each with its own LOINC code and observation time."""
    segs = [f"MSH|^~\\&|EPIC|BENCHHOSP|RXHUB|PHARM|20261130101500||ORU^R01^ORU_R01|{control}|P|2.5.1",
            _pid(family), "OBR|1||LAB1|24323-8^Comprehensive metabolic panel^LN|||20261130"]
    base = datetime(2026, 1, 1) + timedelta(days=run)
    total, i = sum(len(s) + 1 for s in segs), 0
    while total < size - 100:
        i += 1
        when = (base + timedelta(seconds=i)).strftime("%Y%m%d%H%M%S")
        seg = f"OBX|{i}|NM|{loinc(i)}^Analyte {i}^LN||{i % 97}.{i % 10}|mg/dL|0.6-1.3|N|||F|||{when}"
        segs.append(seg)
        total += len(seg) + 1
    return ("\r".join(segs) + "\r").encode()


def fhir_attachment(control: str, size: int = TARGET, family: str = "Bench1", run: int = 0) -> bytes:
    data = _b64(size - 700)
    return ('{"resourceType": "Bundle", "id": "' + control + '", "type": "collection", "meta": {"source": '
            '"BENCHHOSP"}, "entry": [{"resource": {"resourceType": "Patient", "id": "p1", "identifier": [{"system": '
            '"urn:benchhosp:mrn", "value": "B00001"}], "name": [{"family": "' + family + '", "given": ["Pat"]}], '
            '"birthDate": "1960-01-05", "gender": "female"}}, {"resource": {"resourceType": "DocumentReference", '
            '"id": "d1", "status": "current", "subject": {"reference": "Patient/p1"}, "content": [{"attachment": '
            '{"contentType": "application/pdf", "data": "' + data + '"}}]}}]}').encode()


def ccda_nonxml(control: str, size: int = TARGET, family: str = "Bench1", run: int = 0) -> bytes:
    data = _b64(size - 1500)
    return (f'<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3">'
            f'<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
            f'<templateId root="2.16.840.1.113883.10.20.22.1.10"/><id root="2.16.840.1.113883.19.5" '
            f'extension="{control}"/><code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>'
            f'<title>Scanned summary</title><effectiveTime value="20261130"/>'
            f'<recordTarget><patientRole><id root="2.16.840.1.113883.19.5" extension="B00001"/><patient><name>'
            f'<given>Pat</given><family>{family}</family></name><administrativeGenderCode code="F"/>'
            f'<birthTime value="19600105"/></patient></patientRole></recordTarget>'
            f'<custodian><assignedCustodian><representedCustodianOrganization><name>BENCHHOSP</name>'
            f'</representedCustodianOrganization></assignedCustodian></custodian>'
            f'<component><nonXMLBody><text mediaType="application/pdf" representation="B64">{data}</text>'
            f'</nonXMLBody></component></ClinicalDocument>').encode()


def labs_no_match(control: str, size: int = TARGET, run: int = 0) -> bytes:
    return hl7_labs(control, size, family="NOMATCH", run=run)


def oversize(control: str, size: int = TARGET, run: int = 0) -> bytes:
    return hl7_pdf(control, size=6_000_000)


# key → (label, builder, expected status of the 5 MB message)
SHAPES = {
    "pdf": ("HL7 ORU, embedded PDF", hl7_pdf, "processed"),
    "labs": ("HL7 ORU, ~60k lab OBX", hl7_labs, "processed"),
    "labs-nomatch": ("HL7 ORU, 60k OBX, waits for match", labs_no_match, "awaiting_match"),
    "fhir": ("FHIR Bundle, attachment", fhir_attachment, "processed"),
    "ccda": ("C-CDA, nonXMLBody", ccda_nonxml, "processed"),
    "oversize": ("HL7 6 MB (over limit)", oversize, "rejected"),
}


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


def _setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")
    os.environ.setdefault("DJANGO_HTTPS", "0")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)


def prepare(url: str) -> None:
    """Migrate, and create the patient the messages name (once per database)."""
    _setup(url)
    from datetime import date

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from pharmacy.actors import system_actor
    from pharmacy.models import Patient
    from pharmacy.services import patient_create

    birth = date.fromisoformat(PATIENT["birth_date"])
    if not Patient.objects.filter(last_name=PATIENT["last_name"], birth_date=birth).exists():
        patient_create(actor=system_actor("system:maintenance"), reason="Benchmark patient",
                       first_name=PATIENT["first_name"], last_name=PATIENT["last_name"], birth_date=birth,
                       sex=PATIENT["sex"])


def measure(url: str, key: str, run_base: int) -> dict:
    """One (backend, shape) in this fresh process; returns the figures as a dict."""
    _setup(url)
    from pharmacy.interop.sig import parse_sig
    from reconciliation import services
    from reconciliation.models import InboundMessage

    parse_sig("warfarin 5 mg daily")  # the drug dictionary, loaded once outside the timings
    label, build, expected = SHAPES[key]
    # warm-up: the same shape, small (so the peak RSS below is the 5 MB message's)
    services.ingest(channel="folder", payload=build(f"warm-{uuid.uuid4().hex[:8]}", size=50_000, run=run_base),
                    source_name="bench")
    payload = build(f"bench-{uuid.uuid4().hex[:8]}", run=run_base + 1)
    start = time.perf_counter()
    hashlib.sha256(payload).hexdigest()
    floor = time.perf_counter() - start
    gc.collect()
    rss_before, peak_before = rss_mb(), peak_rss_mb()
    cpu, start = time.process_time(), time.perf_counter()
    result = services.ingest(channel="folder", payload=payload, source_name="bench")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_growth = max(peak_rss_mb() - max(peak_before, rss_before), 0.0)
    message = InboundMessage.objects.get(pk=result.message.pk)
    labs = (message.summary or {}).get("lab_results", 0)
    size = len(payload)
    payload = build(f"mem-{uuid.uuid4().hex[:8]}", run=run_base + 2)  # memory: another run, traced
    gc.collect()
    tracemalloc.start()
    services.ingest(channel="folder", payload=payload, source_name="bench")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"label": label, "mb": size / 1e6, "status": message.status, "expected": expected,
            "ack": result.ack_code, "labs": labs, "seconds": elapsed, "cpu": cpu, "py_mb": peak / 1e6,
            "rss_mb": rss_growth, "floor": floor}


def run_backend(name: str, url: str, keys: list[str]) -> list[dict]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, __file__, "--prepare", url], check=True, env=env)
    rows = []
    for n, key in enumerate(keys):
        out = subprocess.run([sys.executable, __file__, "--measure", url, key, str(10 * n)], check=True, env=env,
                             stdout=subprocess.PIPE, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["backend"] = name
        rows.append(row)
        print_row(row)
    return rows


def print_row(r: dict) -> None:
    flag = "" if r["status"] == r["expected"] else f" (expected {r['expected']})"
    print(f"| {r['backend']:<10} | {r['label']:<34} | {r['mb']:>5.2f} | {r['status'] + flag:<14} | {r['ack']:>3} | "
          f"{r['labs']:>6} | {r['seconds']:>6.2f} | {r['cpu']:>6.2f} | {r['py_mb']:>6.1f} | {r['rss_mb']:>6.1f} | "
          f"{r['seconds'] / r['floor']:>5.0f}x |", flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--prepare"]:
        prepare(argv[1])
        return 0
    if argv[:1] == ["--measure"]:
        print(json.dumps(measure(argv[1], argv[2], int(argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--shape", action="append", help="only the shapes whose key contains this")
    args = parser.parse_args(argv)
    keys = [k for k in SHAPES if not args.shape or any(s in k for s in args.shape)]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"target ≤ 2 s and ≤ 100 MB extra per message; load average {load}; {os.cpu_count()} cores")
    print(f"| {'backend':<10} | {'message':<34} | {'MB':>5} | {'status':<14} | {'ack':>3} | {'labs':>6} | "
          f"{'wall s':>6} | {'CPU s':>6} | {'py MB':>6} | {'RSS MB':>6} | {'÷sha':>6} |")
    print(f"|{'-' * 12}|{'-' * 36}|{'-' * 7}|{'-' * 16}|{'-' * 5}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|"
          f"{'-' * 8}|{'-' * 7}|")
    rows: list[dict] = []
    if args.backend in ("postgresql", "both"):
        url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
        ensure_database(url)
        rows += run_backend("PostgreSQL", url, keys)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="rxhub-bench-") as tmp:
            rows += run_backend("SQLite", f"sqlite:///{tmp}/bench.sqlite3", keys)
    wrong = [r for r in rows if r["status"] != r["expected"]]
    worst_s = max(r["seconds"] for r in rows)
    worst_mb = max(max(r["py_mb"], r["rss_mb"]) for r in rows)
    verdict = "holds" if worst_s <= 2 and worst_mb <= 100 and not wrong else "does NOT hold"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"worst: {worst_s:.2f} s, {worst_mb:.1f} MB → the ≤ 2 s / ≤ 100 MB target {verdict}"
          f"{'; a message ended in the wrong status' if wrong else ''} (load average {load})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
