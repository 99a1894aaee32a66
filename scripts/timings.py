"""Time what the README quotes, on this machine, one thing at a time, into results/timings.json.

    .venv/bin/python scripts/timings.py                      # everything (about an hour on 2 cores)
    .venv/bin/python scripts/timings.py --only notebooks suite

What is timed: a fresh install (scripts/setup.sh in a clean clone), every notebook executed top to bottom, the unit
tests alone, the whole suite as CI runs it (`.ci/run` on a clean clone of the last commit), and each experiment's
default run (`python -m minimodels run NAME`).
The README's run times are read from the file this writes (a test checks that every time it states is one of
these), so run it again after anything that changes them, on a machine with nothing else running: a timing that
shares its cores measures the neighbour too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
PARTS = ("install", "notebooks", "unit_tests", "suite", "experiments")


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> dict:
    """Run ``command``; its wall time in seconds and minutes (the README quotes one or the other). ``log``: where its
    output goes (the suite's, to read which test failed)."""
    start = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    print(f"{seconds:7.0f} s  {' '.join(command)[:110]}", flush=True)
    return {"seconds": round(seconds), "minutes": round(seconds / 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--out", default=str(REPO / "results" / "timings.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from minimodels.catalog import EXPERIMENTS
    from minimodels.engine.device import hardware_line

    out = Path(args.out)
    timings = json.loads(out.read_text()) if out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="minimodels-timings-") as scratch:
        scratch = Path(scratch)
        env = {**os.environ, "MINIMODELS_RUNS": str(scratch / "runs"), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "PATH": f"{PYTHON.parent}:{os.environ['PATH']}"}
        if "install" in args.only:
            clone = scratch / "clone"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            timings["install"] = timed(["bash", "scripts/setup.sh"], clone, env)
        if "notebooks" in args.only:
            timings["notebooks"] = {
                nb.stem: timed([str(PYTHON), "-m", "papermill", "--log-level", "WARNING", "--cwd", str(nb.parent),
                                str(nb), str(scratch / nb.name)], REPO, env)
                for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
        if "unit_tests" in args.only:
            timings["unit_tests"] = timed([str(PYTHON), "-m", "pytest", "-q", "tests"], REPO, env)
        if "suite" in args.only:  # exactly what CI runs: .ci/run on a clean clone of the last commit, install included
            clone = scratch / "ci"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            log = Path(tempfile.gettempdir()) / "minimodels-timings-suite.log"
            print(f"the suite's output: {log}", flush=True)
            timings["suite"] = timed(["bash", ".ci/run"], clone, env, log)
        if "experiments" in args.only:
            timings["experiments"] = {
                name: timed([str(PYTHON), "-m", "minimodels", "run", name, "--seed", "0", "--out",
                             str(scratch / "runs" / name)], REPO, env) for name in EXPERIMENTS}
    timings["command"] = " ".join([".venv/bin/python", "scripts/timings.py", *sys.argv[1:]])  # what wrote this file
    timings["machine"] = hardware_line()
    timings["date"] = time.strftime("%Y-%m-%d")
    out.write_text(json.dumps(timings, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
