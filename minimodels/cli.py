"""The command line: everything a notebook does, from a shell.

    python -m minimodels info PRESET [--frames N] [--json]
    python -m minimodels run EXPERIMENT [--preset NAME] [--seed N] [--set key=value ...] [--out DIR [--force|--resume]]
                                  [--json]
    torchrun --nproc_per_node N -m minimodels run ...      (data parallel over N processes, see engine/distributed.py;
                                                            a sweep under torchrun runs each of its runs so)
    python -m minimodels sweep EXPERIMENT --vary KEY=V1,V2 [--preset NAME] [--seeds 0 1 2] [--set key=value ...]
                                  [--write-results]
    python -m minimodels bench PRESET [--batch B] [--steps N] [--frames T] [--recompute-activations] [--compile]
                                      [--json]
    python -m minimodels data build [--out DIR]
    python -m minimodels assignments build [--out DIR [--force]] [--exercises-only]
    python -m minimodels assignments grade SUBMISSIONS... [--exercises-only] [--out DIR [--force]] [--workers N]
                                  [--timeout S] [--memory-gb G] [--json]
    python -m minimodels list
    python -m minimodels results

With ``--json`` the last line printed is one JSON object. A mistake in what you typed or in your files (an unknown
name, a bad value, a missing checkpoint) is printed as ``error: ...`` with exit status 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys

from . import assignments
from .engine.config import parse_assignments
from .engine.errors import ConfigError, MinimodelsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minimodels", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="parameter counts, tokens and GFLOPs of a preset (built on 'meta')")
    info.add_argument("preset")
    info.add_argument("--frames", type=int, default=None, help="frames per clip (default: the preset's)")
    info.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="run an experiment headless and print its metrics")
    run.add_argument("experiment")
    run.add_argument("--preset", default=None)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--set", dest="sets", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    run.add_argument("--out", default=None, help="folder for config.json, the checkpoint and result.json "
                                                 "(default: a new folder under runs/EXPERIMENT/)")
    run.add_argument("--force", action="store_true", help="replace an earlier run in --out (refused otherwise)")
    run.add_argument("--resume", action="store_true", help="continue the interrupted run in --out from its checkpoint")
    run.add_argument("--json", action="store_true")

    sweep = sub.add_parser("sweep", help="run an experiment over seeds and one varied key; save mean ± std")
    sweep.add_argument("experiment")
    sweep.add_argument("--preset", default=None)
    sweep.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sweep.add_argument("--vary", required=True, metavar="KEY=V1,V2,...")
    sweep.add_argument("--set", dest="sets", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    sweep.add_argument("--write-results", action="store_true",
                       help="write the course's results/ file the notebooks read (default: runs/sweeps/)")

    bench = sub.add_parser("bench", help="time training steps of a preset here: clips/s, tokens/s, memory, MFU")
    bench.add_argument("preset")
    bench.add_argument("--batch", type=int, default=8)
    bench.add_argument("--steps", type=int, default=5, help="timed steps, after 2 warm-up steps")
    bench.add_argument("--frames", type=int, default=None, help="frames per clip (default: the preset's)")
    bench.add_argument("--recompute-activations", action="store_true",
                       help="recompute each transformer block's activations in the backward pass (less memory)")
    bench.add_argument("--activation-checkpointing", action="store_true", help=argparse.SUPPRESS)  # the old name
    bench.add_argument("--compile", action="store_true", help="torch.compile the transformer blocks (CUDA)")
    bench.add_argument("--json", action="store_true")

    data = sub.add_parser("data", help="the synthetic world's files")
    data.add_argument("action", choices=["build"])
    data.add_argument("--out", default=None, help="where to write (default: data_small/)")

    assign = sub.add_parser("assignments", help="the notebooks' exercises as nbgrader assignments")
    action = assign.add_subparsers(dest="action", required=True)
    build = action.add_parser("build", help="student and instructor versions of every notebook")
    build.add_argument("--out", default=None, help="where to write student/ and instructor/ (default: "
                                                   "runs/assignments/)")
    build.add_argument("--force", action="store_true", help="replace what --out's student/ and instructor/ hold")
    grade = action.add_parser("grade", help="autograde a class: per student, points, reasons and feedback")
    grade.add_argument("submitted", nargs="+", metavar="SUBMISSIONS",
                       help="a class's folder (one folder per student), a student's folder, or notebooks")
    grade.add_argument("--out", default=None, help="where to write gradebook.csv, reasons.csv and each student's "
                                                   "graded notebooks and feedback (default: runs/grading/TIME/)")
    grade.add_argument("--force", action="store_true", help="write into an --out that already holds files")
    grade.add_argument("--workers", type=int, default=None,
                       help="students graded at once, each in its own process (default: the cores, at most 4)")
    grade.add_argument("--timeout", type=int, default=assignments.EXERCISE_SECONDS,
                       help="seconds an answer or a grade cell may run (default: %(default)s)")
    grade.add_argument("--memory-gb", type=float, default=None,
                       help="memory (address space) each notebook's kernel may take, Linux only (default: no limit)")
    grade.add_argument("--json", action="store_true")
    for parser_ in (build, grade):
        parser_.add_argument("--exercises-only", action="store_true", help="the Exercises sections alone")

    sub.add_parser("list", help="the presets and experiments")
    sub.add_parser("results", help="the course's results table: each notebook's live run beside the 3-seed means")
    return parser


def _print_result(result, as_json: bool) -> None:
    summary = result.summary()
    if as_json:
        print(json.dumps(summary))
        return
    print(f"{result.experiment}, seed {result.seed}: {result.seconds} s, output in {result.info['out_dir']}")
    for name, value in result.metrics.items():
        chance = result.chance.get(name)
        print(f"{name:>24}: {value}" + (f"   (chance {chance})" if chance is not None else ""))


def _command(args) -> None:
    if args.command == "info":
        from .catalog import info
        from .engine.measure import format_info

        result = info(args.preset, args.frames)
        print(json.dumps(result) if args.json else format_info(result))
    elif args.command == "run":
        from .catalog import run_experiment
        from .engine import distributed

        with distributed.launched():  # several processes under torchrun; a no-op otherwise
            result = run_experiment(args.experiment, args.preset, args.seed, parse_assignments(args.sets),
                                    out_dir=args.out, force=args.force, resume=args.resume)
            if distributed.is_main():
                _print_result(result, args.json)
    elif args.command == "sweep":
        from .catalog import make_config, run_experiment
        from .engine import distributed
        from .engine.sweep import check_sweep, sweep, sweep_file

        key, _, values = args.vary.partition("=")
        if not values:
            raise ConfigError(f"--vary {args.vary!r}: expected KEY=V1,V2,...")
        sets = parse_assignments(args.sets)
        check_sweep(values.split(","), args.seeds)
        for value in values.split(","):  # an unknown name, preset, key or value fails before anything runs
            make_config(args.experiment, args.preset, {**sets, key: value})
        run = functools.partial(run_experiment, args.experiment)
        with distributed.launched():  # under torchrun every run is data parallel over the processes
            out = sweep(run, args.experiment, key, values.split(","), args.seeds, sets,
                        write_results=args.write_results, preset=args.preset)
            if distributed.is_main():  # which alone writes the sweep's file, and says so
                print(json.dumps(out["summary"], indent=2))
                print(f"wrote {sweep_file(args.experiment, key, sets, args.write_results, args.preset)}")
    elif args.command == "bench":
        from .catalog import get_preset
        from .engine.bench import bench, format_bench

        if args.activation_checkpointing:
            raise ConfigError("--activation-checkpointing is now called --recompute-activations: use that flag")
        result = bench(args.preset, get_preset(args.preset), args.batch, args.steps, args.frames,
                       recompute_activations=args.recompute_activations, compile=args.compile)
        print(json.dumps(result) if args.json else format_bench(result))
    elif args.command == "data":
        from pathlib import Path

        from .data.build import build
        from .engine.paths import DATA_DIR

        print(f"wrote {build(Path(args.out) if args.out else DATA_DIR)}")
    elif args.command == "assignments":
        _assignments(args)
    elif args.command == "results":
        from .catalog import NOTEBOOKS
        from .engine.results import table

        print(table(NOTEBOOKS))
    elif args.command == "list":
        from .catalog import EXPERIMENTS, PRESETS

        print("presets:     " + ", ".join(PRESETS))
        for name, exp in EXPERIMENTS.items():
            print(f"experiment:  {name} — {exp.summary}")


def _assignments(args) -> None:
    import os
    import time
    from pathlib import Path

    from .engine.paths import RUNS_DIR

    if args.action == "build":
        written = assignments.build(Path(args.out) if args.out else RUNS_DIR / "assignments",
                                    exercises=args.exercises_only, force=args.force)
        for kind, paths in written.items():
            print(f"{kind:<11} {len(paths)} notebooks in {paths[0].parent}")
        return
    for name, value in (("--workers", args.workers), ("--timeout", args.timeout), ("--memory-gb", args.memory_gb)):
        if value is not None and value <= 0:
            raise ConfigError(f"{name} {value}: must be a number > 0")
    sheet = "exercises-only" if args.exercises_only else "whole"
    limits = assignments.Limits(args.timeout, assignments.OTHER_SECONDS[sheet], args.memory_gb)
    out = Path(args.out) if args.out else RUNS_DIR / "grading" / time.strftime("%Y%m%d-%H%M%S")
    workers = args.workers or min(os.cpu_count() or 1, 4)
    report = assignments.grade([Path(p) for p in args.submitted], out, exercises=args.exercises_only,
                               workers=workers, limits=limits, force=args.force)
    print(assignments.report_json(report) if args.json else assignments.points_table(report))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _command(args)
    except MinimodelsError as err:  # the user's to fix: the message says how; a traceback would only hide it
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
