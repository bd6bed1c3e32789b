"""The MLLP listener over real sockets on 127.0.0.1 with python-hl7's client (AA / AE / AR).

Transactional tests are slow to tear down (every table is flushed), so each test covers several
behaviours of one running listener."""
from __future__ import annotations

import socket
import subprocess
import sys

import hl7
import pytest
from hl7.client import MLLPClient

from reconciliation.mllp import BackgroundMLLPServer
from reconciliation.models import InboundMessage, ReconciliationTask

from .conftest import a03

pytestmark = pytest.mark.django_db(transaction=True)


def ack_code(raw: bytes) -> tuple[str, str]:
    text = raw.strip(b"\x0b\x1c\r").decode()
    msa = hl7.parse(text).segment("MSA")
    return str(msa[1]), str(msa[2])


def test_ack_codes_over_a_real_socket(linked_ada, monkeypatch):
    from reconciliation import services

    with BackgroundMLLPServer(idle_timeout=30) as server:
        # A half-open client (a frame that never ends) is connected the whole time.
        stuck = socket.create_connection(("127.0.0.1", server.port))
        stuck.sendall(b"\x0bMSH|^~\\&|SLOW|GENHOSP|")
        try:
            with MLLPClient("127.0.0.1", server.port) as client:
                # AA only after commit: the message and its task exist when the ACK arrives.
                assert ack_code(client.send_message(a03(control_id="M-1"))) == ("AA", "M-1")
                assert InboundMessage.objects.get(control_id="M-1").status == "processed"
                assert ReconciliationTask.objects.filter(inbound_message__control_id="M-1").exists()
                # Duplicate control ID: stored as a duplicate, answered AA, not processed again.
                assert ack_code(client.send_message(a03(control_id="M-1"))) == ("AA", "M-1")
                assert ReconciliationTask.objects.count() == 1
                # AR: the header cannot be read (MSH-9 missing).
                assert ack_code(client.send_message("MSH|^~\\&|X|Y|||20261130||||"))[0] == "AR"
                # AE: processing fails; the message is kept for retry.
                with monkeypatch.context() as m:
                    m.setattr(services.inbound, "_open_task", lambda *a, **k: 1 / 0)
                    assert ack_code(client.send_message(a03(control_id="M-2"))) == ("AE", "M-2")
            # Several frames in one write: one ACK each, in order.
            with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
                sock.sendall(b"".join(b"\x0b" + a03(control_id=f"B-{i}").encode() + b"\x1c\r" for i in range(3)))
                data = b""
                while data.count(b"\x1c\r") < 3:
                    data += sock.recv(65536)
            assert [ack_code(f) for f in data.split(b"\x1c\r") if f.strip()] == [
                ("AA", "B-0"), ("AA", "B-1"), ("AA", "B-2")]
            # The same message from two connections at the same moment: one processed, one duplicate.
            import threading

            answers, gate = [], threading.Barrier(2)

            def send_same():
                with MLLPClient("127.0.0.1", server.port) as c:
                    gate.wait()
                    answers.append(ack_code(c.send_message(a03(control_id="DUP-1"))))

            senders = [threading.Thread(target=send_same) for _ in range(2)]
            for t in senders:
                t.start()
            for t in senders:
                t.join(60)
            assert answers == [("AA", "DUP-1"), ("AA", "DUP-1")]
            assert sorted(InboundMessage.objects.filter(control_id="DUP-1").values_list("status", flat=True)) == [
                "duplicate", "processed"]
        finally:
            stuck.close()
    statuses = dict(InboundMessage.objects.exclude(control_id="").values_list("control_id", "status")
                    .exclude(status="duplicate"))
    assert statuses == {"M-1": "processed", "M-2": "failed", "B-0": "processed", "B-1": "processed",
                        "B-2": "processed", "DUP-1": "processed"}
    assert "ZeroDivisionError" in InboundMessage.objects.get(control_id="M-2").error
    assert InboundMessage.objects.filter(status="rejected", message_type="").count() == 1  # the AR one, stored


def test_mllp_send_command_line_client(linked_ada, tmp_path):
    """python-hl7's own ``mllp_send`` tool works against the listener."""
    path = tmp_path / "msg.hl7"
    path.write_text(a03(control_id="CLI-1"))
    with BackgroundMLLPServer(idle_timeout=5) as server:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from hl7.client import mllp_send; sys.exit(mllp_send())",
                "--port",
                str(server.port),
                "--file",
                str(path),
                "--loose",
                "127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert "MSA|AA|CLI-1" in out.stdout.replace("\r", "\n"), out.stderr
    assert InboundMessage.objects.get(control_id="CLI-1").status == "processed"
