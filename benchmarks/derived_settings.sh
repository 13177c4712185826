#!/usr/bin/env bash
# The derived settings (`gsasrec train --dataset NAME`, no config) against the popularity and transition
# baselines, on generated logs of three shapes (benchmarks/make_logs.py) and on ML-1M; test metrics of the
# final weights, one run per dataset.
#   bash benchmarks/derived_settings.sh [MINUTES] [DATASET ...]     (default: 10 minutes, all four)
#   bash benchmarks/derived_settings.sh 6 short_sessions skewed
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
shift || true
datasets=${*:-short_sessions long_histories skewed ml1m}
generated=benchmarks/runs/datasets
results=benchmarks/runs/derived_results.jsonl
mkdir -p "$generated"
for name in $datasets; do
  if [ "$name" = ml1m ]; then root=../shared/datasets; else root=$generated; fi
  if [ ! -d "$root/$name" ]; then python benchmarks/make_logs.py "$generated" --shapes "$name"; fi
  run=benchmarks/runs/derived_$name
  started=$(date +%s.%N)
  python -m gsasrec train --dataset "$name" --datasets-dir "$root" --max-minutes "$minutes" --seed 0 \
    --output-dir "$run" --force --no-progress
  finished=$(date +%s.%N)
  model=$(python -m gsasrec evaluate --checkpoint "$run/last.pt" --datasets-dir "$root" --json 2>/dev/null | tail -1)
  # the network's own scores, without the transition term the derived settings add after training
  alone=$(python -m gsasrec evaluate --checkpoint "$run/last.pt" --datasets-dir "$root" --no-transition-term --json 2>/dev/null | tail -1)
  # The baselines rank with the run's own rated-item filtering (derived from the data's repeats).
  filter=$(python -c "from gsasrec.config import load_config; print('--filter-rated' if load_config('$run/config.py').filter_rated else '--no-filter-rated')")
  popularity=$(python -m gsasrec evaluate --baseline popularity --dataset "$name" --datasets-dir "$root" $filter --json 2>/dev/null | tail -1)
  transitions=$(python -m gsasrec evaluate --baseline transitions --dataset "$name" --datasets-dir "$root" $filter --json 2>/dev/null | tail -1)
  steps=$(tail -1 "$run/metrics.jsonl" | python -c "import json, sys; print(json.load(sys.stdin)['step'])")
  echo "{\"dataset\": \"$name\", \"filter\": \"$filter\", \"budget_minutes\": $minutes, \"steps\": $steps, \"minutes\": $(python -c "print(round(($finished - $started) / 60, 2))"), \"model\": $model, \"model_alone\": $alone, \"popularity\": $popularity, \"transitions\": $transitions}" >> "$results"
done
python - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"{'dataset':<16} {'filter':<18} {'budget':>6} {'steps':>6} {'min':>5}  {'model nDCG@10':>13} {'network alone':>13} "
      f"{'popularity':>10} {'transitions':>11}")
for r in rows:
    print(f"{r['dataset']:<16} {r.get('filter', '--filter-rated'):<18} {r['budget_minutes']:>6} {r['steps']:>6} "
          f"{r['minutes']:>5}  {r['model']['nDCG@10']:>13.4f} {r.get('model_alone', r['model'])['nDCG@10']:>13.4f} "
          f"{r['popularity']['nDCG@10']:>10.4f} "
          f"{r['transitions']['nDCG@10']:>11.4f}")
PY
