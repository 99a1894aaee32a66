#!/usr/bin/env bash
# The checks that need a CUDA device, in one go: the suite's GPU tests (`pytest -m gpu`: one training step of every
# full preset, the compiled capped attention against the manual one, bench's MFU) and the benchmark rows that the
# README and notebook 06 quote. Usage: bash scripts/gpu_checks.sh OUT_DIR (writes pytest_gpu.log, bench.jsonl,
# gpu.txt there). CI has no GPU; run this on one.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash scripts/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
py=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$out/gpu.txt"
# addopts cleared: nbval and the two-worker split are for the CPU suite, not for these few CUDA tests
timeout 240 $py -m pytest -m gpu -o addopts="" -p no:cacheprovider -rA --durations=0 \
  $(grep -rl "mark.gpu" tests) 2>&1 | tee "$out/pytest_gpu.log"
: > "$out/bench.jsonl"
for args in "videoprism-b --batch 32" "videoprism-b --batch 32 --compile" "videoprism-lvt-b --batch 32 --compile"; do
  echo "== bench $args"
  timeout 80 $py -m minimodels bench $args --steps 10 --json 2>&1 | tee -a "$out/bench.log" | tail -1 >> "$out/bench.jsonl"
done
# one file for results/: the device, the tests' summary line and the bench rows (notebook 06 and the README read it)
$py - "$out" <<'PY'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
log = (out / "pytest_gpu.log").read_text()
summary = re.findall(r"=+ (\d+ passed.*?) in [\d.]+s", log)
rows = [json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines() if line.startswith("{")]
device, torch_line = (out / "gpu.txt").read_text().splitlines()[:2]
(out / "gpu-checks.json").write_text(json.dumps({
    "command": "bash scripts/gpu_checks.sh OUT_DIR", "device": device, "software": torch_line,
    "pytest_gpu": summary[-1] if summary else "did not finish: see pytest_gpu.log", "bench": rows}, indent=2) + "\n")
PY
