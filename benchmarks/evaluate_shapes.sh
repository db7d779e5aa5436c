#!/usr/bin/env bash
# Evaluate the models benchmarks/train_shapes.sh trained on a synthetic set's test split (1,000 images, 5,000
# captions) and write the report's numbers: benchmarks/results/STYLE-fast-plain.json (the plain Fast model)
# and STYLE.json (the distilled Fast model, Slow over all images and Fast+Slow at each K), plus, for the
# shipped shapes models, the plot docs/evaluation-recall-vs-time.png.
# Usage: [STYLE=shapes] [WORK=build/STYLE] [MODELS=DIR] [QUERIES=300] benchmarks/evaluate_shapes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GLIMPSE=${GLIMPSE:-.venv/bin/glimpse}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
STYLE=${STYLE:-shapes}
WORK=${WORK:-build/$STYLE}
if [ "$STYLE" = shapes ]; then MODELS=${MODELS:-resources/models}; else MODELS=${MODELS:-$WORK/models}; fi
QUERIES=${QUERIES:-300}
RESULTS=benchmarks/results
mkdir -p "$RESULTS"
"$GLIMPSE" eval "$WORK/data" --fast "$MODELS/$STYLE-fast-plain.pt" --device cpu --json \
    > "$RESULTS/$STYLE-fast-plain.json"
"$GLIMPSE" eval "$WORK/data" --fast "$MODELS/$STYLE-fast.pt" --slow "$MODELS/$STYLE-slow.pt" \
    --rerank 1,5,10,20,50 --queries "$QUERIES" --seed 0 --device cpu --json > "$RESULTS/$STYLE.json"
if [ "$STYLE" = shapes ]; then
    .venv/bin/python benchmarks/plot_evaluation.py "$RESULTS/shapes-fast-plain.json" "$RESULTS/shapes.json" \
        docs/evaluation-recall-vs-time.png
fi
