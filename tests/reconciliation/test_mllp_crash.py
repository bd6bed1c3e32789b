"""Lossless MLLP with real processes on PostgreSQL: a stream of 1,000 HL7 messages to
``manage.py mllp_listener``, the listener killed with SIGKILL twice mid-stream, the sender
resending everything not acknowledged AA — every message is processed exactly once and none is
left ``received``. Then the database goes away under the running listener (a TCP relay between it
and PostgreSQL is cut): it answers AE, stays up, and processes the resends once the database is back."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from reconciliation.models import InboundMessage

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the listener runs in its own process: it needs a database it can reach"),
]
ROOT = Path(__file__).resolve().parents[2]
SB, EB, CR = b"\x0b", b"\x1c", b"\r"
BASE = datetime(2026, 11, 1, 8, 0, 0)


def oru(n: int) -> bytes:
    """A small ORU^R01 with one creatinine result at its own time (one LabResult per message)."""
    at = (BASE + timedelta(minutes=n)).strftime("%Y%m%d%H%M%S")
    return ("\r".join([
        f"MSH|^~\\&|EPIC|GENHOSP|RXHUB|PHARM|{at}||ORU^R01^ORU_R01|CR-{n:04d}|P|2.5.1",
        "PID|1||MRN12345^^^GENHOSP^MR||LOVELACE^ADA||19600105|F",
        f"OBR|1||L{n}|2160-0^Creatinine^LN|||{at}",
        f"OBX|1|NM|2160-0^Creatinine^LN||1.{n % 10}|mg/dL|0.6-1.3|N|||F|||{at}",
    ]) + "\r").encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url(host: str, port: str | int) -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{host}:{port}/{s['NAME']}"


def _start_listener(port: int, db_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_HTTPS": "0", "PYTHONUNBUFFERED": "1"}
    log = tempfile.TemporaryFile()  # not a pipe: a chatty listener must never block on it
    proc = subprocess.Popen([sys.executable, "manage.py", "mllp_listener", "--port", str(port), "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"listener exited: {log.read().decode()[-2000:]}") from None
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("listener did not start")


def _acks(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Complete ACK frames in ``data`` → [(MSA-1, MSA-2)], and the bytes left over."""
    out = []
    while EB in data:
        frame, data = data.split(EB, 1)
        data = data[1:] if data[:1] == CR else data
        text = frame.lstrip(SB).decode("utf-8", "replace")
        msa = next((seg.split("|") for seg in text.split("\r") if seg.startswith("MSA")), None)
        if msa and len(msa) > 2:
            out.append((msa[1], msa[2]))
    return out, data


def _send_window(port: int, messages: dict[str, bytes], ids: list[str], on_sent=None) -> dict[str, str]:
    """Send these messages on one connection (pipelined), read the ACKs until all came or the
    connection died; returns {control id: ACK code} for the ACKs that arrived."""
    answers: dict[str, str] = {}
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"".join(SB + messages[i] + EB + CR for i in ids))
            if on_sent is not None:
                on_sent()
            data = b""
            while len(answers) < len(ids):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                found, data = _acks(data + chunk)
                answers.update({cid: code for code, cid in found})
    except OSError:
        pass  # the listener died under us: whatever was not acknowledged is sent again
    return answers


def test_thousand_messages_two_sigkills_every_message_processed_exactly_once(linked_ada):
    total, window = 1000, 25
    messages = {f"CR-{n:04d}": oru(n) for n in range(total)}
    order = list(messages)
    port = _free_port()
    db_url = _database_url(connection.settings_dict["HOST"] or "127.0.0.1", connection.settings_dict["PORT"] or 5432)
    kills_at = [300, 650]  # after this many AA, the listener is killed right after a window is sent
    kills, attempts, acked = 0, 0, set()
    listener = _start_listener(port, db_url)
    try:
        while len(acked) < total:
            attempts += 1
            assert attempts < 200, f"not converging: {len(acked)} of {total} acknowledged"
            if listener.poll() is not None:
                listener = _start_listener(port, db_url)
            todo = [cid for cid in order if cid not in acked][:window]
            kill = kills < len(kills_at) and len(acked) >= kills_at[kills]

            def sigkill(proc=listener, due=kill):
                if due:
                    time.sleep(0.05)  # some of the window stored, some processed, some not read yet
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)

            answers = _send_window(port, messages, todo, on_sent=sigkill)
            kills += kill
            acked |= {cid for cid, code in answers.items() if code == "AA"}
    finally:
        listener.send_signal(signal.SIGTERM)
        try:
            listener.wait(20)
        except subprocess.TimeoutExpired:
            listener.kill()
    assert kills == 2
    rows = list(InboundMessage.objects.filter(control_id__startswith="CR-").values_list("control_id", "status"))
    processed = [cid for cid, status in rows if status == "processed"]
    assert sorted(processed) == order  # every message processed, none twice
    assert not [cid for cid, status in rows if status in ("received", "failed", "rejected")]
    from pharmacy.models import LabResult

    assert LabResult.objects.filter(patient=linked_ada, loinc_code="2160-0").count() == total  # effects once
    assert {status for _, status in rows} <= {"processed", "duplicate"}


class Relay:
    """A TCP relay 127.0.0.1:port → PostgreSQL that can be cut (every connection closed, new ones
    refused) and restored: the database going away as the listener sees it."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, _free_port()
        self.conns: list[socket.socket] = []
        self.server: socket.socket | None = None
        self.lock = threading.Lock()

    def up(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def down(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the relay thread
            except OSError:
                pass
            server.close()
        with self.lock:
            for conn in self.conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self.conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return


def test_listener_survives_a_database_outage_and_resumes(linked_ada):
    s = connection.settings_dict
    relay = Relay((s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)))
    relay.up()
    port = _free_port()
    messages = {f"CR-{n:04d}": oru(n) for n in range(3)}
    listener = _start_listener(port, _database_url("127.0.0.1", relay.port))
    try:
        assert _send_window(port, messages, ["CR-0000"]) == {"CR-0000": "AA"}
        relay.down()  # the database goes away
        assert _send_window(port, messages, ["CR-0001"]) == {"CR-0001": "AE"}
        assert listener.poll() is None  # still up
        relay.up()  # back: nothing restarted
        # As a sender does: resend whatever was not acknowledged AA (a connection that went stale in
        # the outage may answer AE once more before it is replaced), until both are accepted.
        deadline = time.monotonic() + 30
        pending, answers = ["CR-0001", "CR-0002"], {}
        while time.monotonic() < deadline and pending:
            answers.update(_send_window(port, messages, pending))
            pending = [cid for cid in pending if answers.get(cid) != "AA"]
        assert answers == {"CR-0001": "AA", "CR-0002": "AA"}
    finally:
        listener.send_signal(signal.SIGTERM)
        try:
            listener.wait(20)
        except subprocess.TimeoutExpired:
            listener.kill()
        relay.down()
    statuses = dict(InboundMessage.objects.exclude(status="duplicate").values_list("control_id", "status"))
    assert statuses == {"CR-0000": "processed", "CR-0001": "processed", "CR-0002": "processed"}
