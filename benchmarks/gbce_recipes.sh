#!/usr/bin/env bash
# The ML-1M runs behind benchmarks/RESULTS.md "gSASRec that learns" and pretrained/: each CPU recipe for a
# fixed step budget, then test metrics and calibration of its final weights. One run at a time: two
# trainings side by side on a 2-core machine slow each other down several-fold.
#   bash benchmarks/gbce_recipes.sh [DATASETS_DIR] [RECIPE ...]
# Recipes: gsasrec (t=0.75, 6,500 steps), gsasrec_short (the same in 1,600 steps), gsasrec_t1 (t=1.0), sasrec, default (the seed's gSASRec config as it is, with
# today's defaults), reference (the seed's config with the reference's dynamics: init_std=None,
# logit_offset=False). Runs land in benchmarks/runs/<recipe>, their epoch logs in benchmarks/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
datasets=${1:-../shared/datasets}
shift || true
recipes=${*:-gsasrec sasrec gsasrec_t1 reference}
mkdir -p benchmarks/runs benchmarks/logs
for recipe in $recipes; do
  case $recipe in
    gsasrec) config=configs/ml1m_gsasrec_cpu.py; steps=6500 ;;
    gsasrec_t1) config=configs/ml1m_gsasrec_t1_cpu.py; steps=4000 ;;
    sasrec) config=configs/ml1m_sasrec_cpu.py; steps=3000 ;;
    gsasrec_short)  # the gSASRec recipe with its learning-rate decay squeezed into 1,600 steps (~10 minutes)
      config=benchmarks/runs/ml1m_gsasrec_1600.py; steps=1600
      printf '%s\n' 'import dataclasses, runpy' \
        "config = dataclasses.replace(runpy.run_path('$PWD/configs/ml1m_gsasrec_cpu.py')['config'], lr_decay_steps=1600)" \
        > "$config" ;;
    default) config=configs/ml1m_gsasrec.py; steps=960 ;;
    reference)
      config=benchmarks/runs/ml1m_reference_dynamics.py; steps=480
      sed 's/gbce_t = 0.75,/gbce_t = 0.75, init_std=None, logit_offset=False,/' configs/ml1m_gsasrec.py > "$config" ;;
    *) echo "unknown recipe $recipe" >&2; exit 2 ;;
  esac
  run=benchmarks/runs/$recipe
  rm -rf "$run"
  python -m gsasrec train --config "$config" --datasets-dir "$datasets" --precision auto --max-steps "$steps" --seed 0 \
    --output-dir "$run" --no-progress
  cp "$run/metrics.jsonl" "benchmarks/logs/ml1m_${recipe}_seed0.jsonl"
  python -m gsasrec evaluate --checkpoint "$run/last.pt" --datasets-dir "$datasets" --calibration \
    --calibration-plot "$run/calibration.png" --json | tee "$run/test.txt"
done
python benchmarks/time_to_quality.py benchmarks/logs/ml1m_*_seed0.jsonl
