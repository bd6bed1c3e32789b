"""Scale-out on django-q2's Redis broker (README, Production): two task clusters (``manage.py
qcluster`` with REDIS_URL, one worker each, as on two machines) share one redis-server started here
on a free port; every enqueued task runs exactly once, and a refill detection chunk enqueued the
same way opens its request in the shared PostgreSQL database."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                                 else None)
TASKS = 24

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the task clusters run in their own processes: they need a database they can reach"),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (.ci/run installs Debian's)"),
]


def record_run(path: str, n: int) -> int:
    """The task under test: one line per execution, appended atomically (O_APPEND)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{n} {os.getpid()}\n")
    time.sleep(0.1)  # long enough that both clusters take some of the tasks
    return n


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def redis_url(tmp_path):
    import redis

    port = _free_port()
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.from_url(url)

    def up():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        assert _wait(up, 15), "redis-server did not start"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _start_cluster(redis_url: str, log) -> subprocess.Popen:
    s = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
           "REDIS_URL": redis_url, "Q_WORKERS": "1", "DJANGO_HTTPS": "0", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the cluster's own worker processes too
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _dump(clusters, logs) -> None:
    for proc, log in zip(clusters, logs, strict=True):
        log.seek(0)
        print(f"cluster {proc.pid} (exit {proc.poll()}):\n{log.read().decode(errors='replace')[-3000:]}")


def test_two_clusters_on_redis_run_each_task_exactly_once(redis_url, monkeypatch, settings, tmp_path):
    from django_q.brokers.redis_broker import Redis
    from django_q.conf import Conf
    from django_q.models import Success
    from django_q.status import Stat
    from django_q.tasks import async_task

    from refills.models import RefillRequest
    from tests.factories import FillFactory, PrescriptionFactory

    assert "orm" in settings.Q_CLUSTER and "redis" not in settings.Q_CLUSTER  # default: the ORM broker
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    broker = Redis(list_key=Conf.CLUSTER_NAME)  # the queue the clusters read (REDIS_URL → Q_CLUSTER["redis"])

    today = timezone.localdate()
    rx = PrescriptionFactory(days_supply=30, written_date=today - timedelta(days=60), refills_remaining=3)
    FillFactory(prescription=rx, fill_date=today - timedelta(days=26), days_supply=30)

    runs = tmp_path / "runs.txt"
    logs = [tempfile.TemporaryFile() for _ in range(2)]
    clusters = [_start_cluster(redis_url, log) for log in logs]
    try:
        # both clusters up (each reports its status to the broker) before anything is enqueued
        if not _wait(lambda: len(Stat.get_all(broker)) == 2, 60):
            _dump(clusters, logs)
            pytest.fail("the two clusters did not start in 60 s")
        for n in range(TASKS):
            async_task("tests.pharmacy.test_redis_broker.record_run", str(runs), n, broker=broker, sync=False,
                       group="redis-exactly-once")
        async_task("refills.tasks.detect_refills_chunk", rx.pk, rx.pk + 1, today.isoformat(), 7, False,
                   broker=broker, sync=False, group="redis-detection")

        def done():
            lines = runs.read_text().splitlines() if runs.exists() else []
            return len(lines) >= TASKS and Success.objects.filter(group="redis-detection").exists()

        if not _wait(done, 90):
            _dump(clusters, logs)
            pytest.fail(f"tasks not done in 90 s: {runs.read_text() if runs.exists() else 'no run'}")
        assert _wait(lambda: broker.queue_size() == 0, 10)
        time.sleep(1.0)  # a second delivery of any task would have run by now
        lines = runs.read_text().splitlines()
        assert sorted(int(line.split()[0]) for line in lines) == list(range(TASKS))  # each once, none twice
        assert Success.objects.filter(group="redis-exactly-once").count() == TASKS
        pids = {line.split()[1] for line in lines}
        assert len(pids) == 2, f"both clusters' workers took tasks: {pids}"
        assert list(RefillRequest.objects.filter(prescription=rx).values_list("kind", "source")) == [
            ("refill", "detection")]
    finally:
        for proc in clusters:
            _stop(proc)
