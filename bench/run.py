"""Run every benchmark in bench/ (each prints its own table). Not part of the test run.

    python bench/run.py            # all
    python bench/run.py ingest     # the ones whose file name contains "ingest"
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_"))
    if wanted:
        scripts = [p for p in scripts if any(w in p.name for w in wanted)]
    failures = 0
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        failures += subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
