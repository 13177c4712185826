#!/usr/bin/env bash
# The GPU checks of the performance and reproduction issues, as one script for a device session.
# On the device machine (no network): copy ML-1M into an ignored folder of the repo first, e.g.
#   mkdir -p .data && cp -r ../shared/datasets/ml1m .data/   (and carry .data)
# then: PYTHONPATH=src bash benchmarks/gpu_suite.sh .data
set -euo pipefail
datasets=${1:-.data}
export PYTHONUNBUFFERED=1
for config in configs/ml1m_gsasrec.py configs/ml1m_sasrec.py; do
  for precision in fp32 bf16; do
    python benchmarks/speed.py --config "$config" --datasets-dir "$datasets" --device cuda \
      --precision "$precision" --steps 200 --warmup 20
  done
done
python benchmarks/speed.py --config configs/ml1m_gsasrec.py --datasets-dir "$datasets" --device cuda \
  --precision bf16 --compile --steps 200 --warmup 30 --no-eval
python benchmarks/logit_paths.py --device cuda
