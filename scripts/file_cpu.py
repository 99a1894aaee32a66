"""A pytest plugin: the CPU seconds each test file costs, for the order in conftest.py's LONGEST_FIRST.

    PYTHONPATH=scripts .venv/bin/python -m pytest -p file_cpu

Each worker adds up, per file, its own CPU time and that of the processes it started and waited for (a notebook's
kernel, a command a test runs), from getrusage after every test. CPU time, unlike wall time, hardly moves when
something else shares the cores, so the order can be measured beside a running job. A tool that a file starts
without waiting for it (the Java of the caption metrics) is not counted. At the end the main process prints the
table, longest first.
"""

from __future__ import annotations

import json
import os
import resource
import tempfile
from collections import defaultdict
from pathlib import Path

_OUT = Path(os.environ.setdefault("FILE_CPU_DIR", tempfile.mkdtemp(prefix="file-cpu-")))  # workers inherit it
_seconds: dict[str, float] = defaultdict(float)
_before: list[float] = []


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_runtest_protocol(item, nextitem):  # called only where tests run: a worker, or pytest without workers
    if not _before:
        _before.append(_cpu())


def pytest_runtest_logfinish(nodeid, location):
    if _before:  # the main process of a run with workers only relays the workers' reports
        now = _cpu()
        _seconds[nodeid.split("::")[0]] += now - _before[0]
        _before[0] = now


def pytest_sessionfinish(session):
    if _seconds:
        (_OUT / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.json").write_text(json.dumps(_seconds))
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    total: dict[str, float] = defaultdict(float)
    for part in _OUT.glob("*.json"):
        for path, seconds in json.loads(part.read_text()).items():
            total[path] += seconds
    print(f"\nCPU seconds per file ({_OUT}):")
    for path, seconds in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"{seconds:8.1f}  {path}")
