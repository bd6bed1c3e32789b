"""Run every benchmark in bench/ (each prints its own table), then one summary of their tables
with the date and the machine. Not part of the test run.

    python bench/run.py            # all (make bench)
    python bench/run.py pages api  # the ones whose file name contains "pages" or "api"

The machine is shared while developing: note its load (printed) beside any figure you quote.
"""
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# pages before api: api reuses the database pages seeds.
ORDER = ["detection.py", "pages.py", "api.py"]


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()}: {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, load average {load}")


def main(argv: list[str]) -> int:
    wanted = argv[1:]
    scripts = sorted((p for p in HERE.glob("*.py") if p.name != "run.py" and not p.name.startswith("_")),
                     key=lambda p: (ORDER.index(p.name) if p.name in ORDER else len(ORDER), p.name))
    if wanted:
        scripts = [p for p in scripts if any(w in p.name for w in wanted)]
    started = datetime.datetime.now(datetime.UTC)
    failures, tables = 0, []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        proc = subprocess.Popen([sys.executable, str(script)], cwd=HERE.parent, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        failures += proc.wait() != 0
        table = [line for line in lines if line.startswith("|")]
        tables.append((script.name, table or ["(no table printed)"]))
    print(f"\n=== summary: {started:%Y-%m-%d %H:%M} UTC on {machine()}")
    for name, table in tables:
        print(f"\n{name}\n")
        print("\n".join(table))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
