"""`serve` runs the web server and the MLLP listener as children; stopping it stops them all."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_sigterm_stops_the_web_server_and_listener_too(tmp_path):
    web, mllp = _free_port(), _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DJANGO_HTTPS": "0"}
    serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(web), "--mllp-port", str(mllp),
                              "--workers", "1", "--no-cluster"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert _wait(lambda: _listening(web) and _listening(mllp), 30), "serve did not start its children"
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        assert _wait(lambda: not _listening(web) and not _listening(mllp), 15), "children outlived serve"
    finally:  # whatever happened, leave no process behind (children share serve's process group)
        try:
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        serve.wait(timeout=10)


def _children(pid: int) -> dict[int, str]:
    """The direct children of ``pid`` with their command lines (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found[int(entry.name)] = cmdline
    return found


def test_a_child_that_dies_is_restarted_with_backoff_and_logged(tmp_path):
    web, mllp = _free_port(), _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DJANGO_HTTPS": "0",
           "RXHUB_SERVE_BACKOFF_FIRST": "0.5"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(web), "--mllp-port",
                                  str(mllp), "--workers", "1", "--no-cluster"], cwd=ROOT, env=env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _wait(lambda: _listening(web) and _listening(mllp), 30), "serve did not start its children"

        def listener_pid():
            return next((pid for pid, cmd in _children(serve.pid).items() if "mllp_listener" in cmd), None)

        first = listener_pid()
        assert first is not None
        for kill in range(2):  # two deaths in a row: the second waits longer (backoff)
            victim = listener_pid()
            os.kill(victim, signal.SIGKILL)
            assert _wait(lambda v=victim: listener_pid() not in (None, v) and _listening(mllp), 30), \
                f"the listener was not restarted after kill {kill + 1}"
        assert serve.poll() is None and _listening(web), "the web server went down with the listener"
        text = log.read_text()
        assert "MLLP listener" in text and "exited with code -9" in text
        delays = [line.rsplit("restarting in ", 1)[1] for line in text.splitlines() if "restarting in " in line]
        assert delays == ["0.5 s", "1.0 s"], delays  # doubled after a quick second death
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        assert _wait(lambda: not _listening(web) and not _listening(mllp), 15), "children outlived serve"
    finally:
        try:
            os.killpg(serve.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        serve.wait(timeout=10)


def test_restart_delay_doubles_up_to_the_cap_and_resets_after_a_healthy_run():
    from pharmacy.management.commands.serve import HEALTHY_AFTER, next_delay

    cases = [(0, 0.1, 1), (1, 0.1, 2), (2, 5, 4), (32, 1, 60), (60, 1, 60), (16, HEALTHY_AFTER, 1)]
    assert [next_delay(prev, ran, first=1, cap=60) for prev, ran, _ in cases] == [want for *_, want in cases]
