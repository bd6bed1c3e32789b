"""One configuration style (issue 12): nothing reads os.environ / os.getenv outside settings.
Scans the tree (settings.py, tests, bench and manage.py excluded) and fails on any hit that is
not in the short allow-list below, each entry with why it stays."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATTERN = re.compile(r"\bos\.environ\b|\bos\.getenv\b|\bgetenv\(")
SKIP_DIRS = {".venv", "tests", "bench", "node_modules", ".git", "var", "static", "staticfiles"}
SKIP_FILES = {"pharmacy/settings.py", "manage.py"}

#: (file, text of the line) -> why it may read the environment.
ALLOWED = {
    # Django's entry points name the settings module before settings exist.
    ("pharmacy/wsgi.py", 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")'),
    ("pharmacy/asgi.py", 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pharmacy.settings")'),
    # serve hands its own environment to the children it starts (not a configuration read).
    ("pharmacy/management/commands/serve.py", "self.process = subprocess.Popen(self.argv, env=os.environ.copy())"),
    # The one helper that reads a secret NAMED by configuration, at use time (documented in settings).
    ("pharmacy/secrets.py", 'return os.environ.get(name, "") if name else ""'),
}


def _hits():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if set(rel.parts[:-1]) & SKIP_DIRS or rel.as_posix() in SKIP_FILES:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if PATTERN.search(line) and not line.lstrip().startswith("#"):
                yield rel.as_posix(), line.strip()


def test_nothing_reads_the_environment_outside_settings():
    unexpected = [hit for hit in _hits() if hit not in ALLOWED]
    assert unexpected == [], "read these through settings.RXHUB (pharmacy/settings.py):\n" + "\n".join(
        f"{f}: {line}" for f, line in unexpected)


def test_every_allow_list_entry_still_matches():
    """An entry that no longer matches is removed, so the list cannot linger."""
    assert ALLOWED - set(_hits()) == set()
