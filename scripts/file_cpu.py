"""A pytest plugin: what each test file costs, for the order in conftest.py's LONGEST_FIRST.

    PYTHONPATH=scripts .venv/bin/python -m pytest -p file_cpu

Each worker adds up, per file, its own CPU time and that of the processes it started and waited for (a notebook's
kernel, a command a test runs), from getrusage after every test. CPU time, unlike wall time, hardly moves when
something else shares the cores, so the order can be measured beside a running job. A tool that a file starts
without waiting for it (the Java of the caption metrics) is not counted. At the end the main process prints the
table, longest first, and each worker's files in the order it ran them, with when each started and ended
(seconds from the start of the run): a core left idle shows as a gap, or as one worker ending long before the other.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from pathlib import Path

_OUT = Path(os.environ.setdefault("FILE_CPU_DIR", tempfile.mkdtemp(prefix="file-cpu-")))  # workers inherit both
_OUT.mkdir(parents=True, exist_ok=True)
_START = float(os.environ.setdefault("FILE_CPU_START", str(time.time())))
_files: dict[str, dict] = {}  # path -> {"cpu", "start", "end"}, in the order this process ran them
_last: list[float] = []  # CPU seconds at the end of the last test


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_runtest_protocol(item, nextitem):  # called only where tests run: a worker, or pytest without workers
    if not _last:
        _last.append(_cpu())
    path = item.nodeid.split("::")[0]
    _files.setdefault(path, {"cpu": 0.0, "start": time.time() - _START, "end": 0.0})


def pytest_runtest_logfinish(nodeid, location):
    if _last:  # the main process of a run with workers only relays the workers' reports
        now, entry = _cpu(), _files[nodeid.split("::")[0]]
        entry["cpu"] += now - _last[0]
        entry["end"] = time.time() - _START
        _last[0] = now


def pytest_sessionfinish(session):
    if _files:
        (_OUT / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.json").write_text(json.dumps(_files))
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    workers = {part.stem: json.loads(part.read_text()) for part in sorted(_OUT.glob("*.json"))}
    every: dict[str, float] = {}
    for files in workers.values():
        for path, entry in files.items():
            every[path] = every.get(path, 0.0) + entry["cpu"]
    print(f"\nCPU seconds per file ({_OUT}):")
    for path, seconds in sorted(every.items(), key=lambda kv: -kv[1]):
        print(f"{seconds:8.1f}  {path}")
    for name, files in workers.items():
        print(f"\n{name}: {sum(e['cpu'] for e in files.values()):.0f} CPU seconds; its files as it ran them "
              f"(start-end, seconds from the start of the run):")
        for path, entry in files.items():
            print(f"{entry['start']:7.1f}-{entry['end']:7.1f}  {entry['cpu']:7.1f}  {path}")
