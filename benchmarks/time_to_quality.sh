#!/usr/bin/env bash
# Every ML-1M CPU recipe with three seeds: train for the recipe's step budget, then test metrics and
# calibration of the final weights; prints one table, medians first (benchmarks/recipe_table.py).
#   bash benchmarks/time_to_quality.sh [DATASETS_DIR] [RECIPE ...]      (default: all recipes)
#   SEEDS="0 1" bash benchmarks/time_to_quality.sh ../shared/datasets gsasrec
#   STEPS=2 SEEDS=0 bash benchmarks/time_to_quality.sh ../shared/datasets sasrec    (a quick check of the script)
# Recipes: gsasrec (t=0.75, within 10 minutes: 2.6-2.8 with the C kernels), gsasrec_t1 (t=1.0, 10 minutes),
# sasrec (1 negative, t=0, 3 minutes);
# gsasrec_shared and gsasrec_t1_shared (negatives shared by a batch row, 2,800 steps, under 10 minutes);
# gsasrec_30min (shared, 1,024 negatives, three blocks, 5,000 steps, about 21 minutes); gsasrec_60min (the same
# with six blocks, 5,000 steps, about 34 minutes).
# One run at a time: two trainings side by side on a 2-core machine slow each other down. Runs land in
# benchmarks/runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
datasets=${1:-../shared/datasets}
shift || true
recipes=${*:-gsasrec gsasrec_t1 sasrec}
seeds=${SEEDS:-0 1 2}
mkdir -p benchmarks/runs
results=benchmarks/runs/recipe_results.jsonl
for recipe in $recipes; do
  case $recipe in
    gsasrec) config=configs/ml1m_gsasrec_10min.py ;;
    gsasrec_t1) config=configs/ml1m_gsasrec_t1_10min.py ;;
    sasrec) config=configs/ml1m_sasrec_3min.py ;;
    gsasrec_shared) config=configs/ml1m_gsasrec_shared.py ;;
    gsasrec_t1_shared) config=configs/ml1m_gsasrec_t1_shared.py ;;
    gsasrec_30min) config=configs/ml1m_gsasrec_30min.py ;;
    gsasrec_60min) config=configs/ml1m_gsasrec_60min.py ;;
    *) echo "unknown recipe $recipe (gsasrec, gsasrec_t1, sasrec, gsasrec_shared, gsasrec_t1_shared, gsasrec_30min, gsasrec_60min)" >&2; exit 2 ;;
  esac
  for seed in $seeds; do
    run=benchmarks/runs/${recipe}_seed$seed
    started=$(date +%s.%N)
    # The recipe's own budget (its config's lr_decay_steps), or $STEPS for a quick check of this script.
    steps=${STEPS:-$(python -c "from gsasrec.config import load_config; print(load_config('$config').lr_decay_steps)")}
    python -m gsasrec train --config "$config" --datasets-dir "$datasets" --precision auto --seed "$seed" \
      --output-dir "$run" --force --no-progress --max-steps "$steps"
    finished=$(date +%s.%N)
    metrics=$(python -m gsasrec evaluate --checkpoint "$run/last.pt" --datasets-dir "$datasets" --calibration \
      --calibration-plot "$run/calibration.png" --json 2>/dev/null | tail -1)
    steps=$(tail -1 "$run/metrics.jsonl" | python -c "import json, sys; print(json.load(sys.stdin)['step'])")
    echo "{\"recipe\": \"$recipe\", \"seed\": $seed, \"steps\": $steps, \"minutes\": $(python -c "print(round(($finished - $started) / 60, 2))"), \"metrics\": $metrics}" >> "$results"
  done
done
python benchmarks/recipe_table.py "$results"
