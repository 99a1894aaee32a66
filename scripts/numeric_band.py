"""How far the notebooks' live numbers move with the machine: each notebook's live run (seed 0, the notebook's own
settings) under the numeric environments that differ between computers, as a markdown table.

On one machine a run is bit for bit repeatable (same data, same seeded streams, same kernels). Between machines two
things change the floating-point rounding, and over hundreds of steps the rounding moves the trajectory:
- the number of torch threads: one thread and several split some reductions differently (2, 4 and 8 threads
  agree with each other, 1 does not);
- the CPU's vector instructions: torch picks AVX-512, AVX2 or plain kernels when it starts, and each rounds
  differently. ``ATEN_CPU_CAPABILITY`` forces a lower level, which is how this script imitates another CPU.

    .venv/bin/python scripts/numeric_band.py            # the README's table
    .venv/bin/python scripts/numeric_band.py 03 05      # the rows of some notebooks
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# (notebook, experiment, the notebook's live settings)
LIVE_RUNS = [
    ("01", "videoprism-vit-probe", {"train.steps": "700"}),
    ("02", "videoprism-stage1", {"token_drop": "0.5", "train.steps": "150"}),
    ("03", "videoprism-stage2", {"mask": "bevt", "shuffle": "true", "global_distill": "true", "train.steps": "60"}),
    ("04", "mvgpt-captioning", {"pretrain": "bidirectional", "pretraining.steps": "50", "finetuning.steps": "150"}),
    ("05", "minigpt4video-qa", {"image_stage.steps": "200", "caption_stage.steps": "50", "qa_stage.steps": "80",
                                "eval_limit": "80"}),
]


def environments() -> dict[str, dict]:
    """{name: what changes in the environment}. Another CPU is imitated by the vector kernels one level below this
    one's: AVX2 on an AVX-512 machine, the plain ones on an AVX2 machine (on AVX2 "avx2" would change nothing)."""
    import torch

    ours = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2" or "DEFAULT"
    lower = ("AVX2 kernels", "avx2") if ours == "AVX512" else ("plain kernels", "default")
    return {f"this CPU ({ours}), all threads": {}, "1 thread": {"OMP_NUM_THREADS": "1"},
            lower[0]: {"ATEN_CPU_CAPABILITY": lower[1]}}


def live_run(experiment: str, sets: dict, env: dict, out: Path) -> dict:
    args = [sys.executable, "-m", "minimodels", "run", experiment, "--seed", "0", "--out", str(out)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1",
                        "MINIMODELS_RUNS": str(out.parent), **env})
    return json.loads((out / "result.json").read_text())


def main() -> None:
    envs = environments()
    print("| notebook | metric | " + " | ".join(envs) + " | spread |")
    print("|---|---|" + "---|" * (len(envs) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        for notebook, experiment, sets in LIVE_RUNS:
            if sys.argv[1:] and notebook not in sys.argv[1:]:
                continue
            results = [live_run(experiment, sets, env, Path(tmp) / f"{experiment}-{i}")
                       for i, env in enumerate(envs.values())]
            for metric in results[0]["headline"]:
                values = [r["metrics"][metric] for r in results]
                print(f"| {notebook} | {metric} | " + " | ".join(f"{v:.3f}" for v in values)
                      + f" | {max(values) - min(values):.3f} |", flush=True)


if __name__ == "__main__":
    main()
