#!/usr/bin/env bash
# Evaluate the shipped shapes models on the synthetic test split (1,000 images, 5,000 captions) and write the
# report's numbers and plot. Run after benchmarks/train_shapes.sh (which leaves the set in build/shapes/data).
# Usage: benchmarks/evaluate_shapes.sh [WORK_DIR] [SLOW_QUERIES]
set -euo pipefail
cd "$(dirname "$0")/.."
GLIMPSE=${GLIMPSE:-.venv/bin/glimpse}
WORK=${1:-build/shapes}
QUERIES=${2:-300}
MODELS=resources/models
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mkdir -p benchmarks/results
"$GLIMPSE" eval "$WORK/data" --fast "$MODELS/shapes-fast-plain.pt" --device cpu --json \
    > benchmarks/results/shapes-fast-plain.json
"$GLIMPSE" eval "$WORK/data" --fast "$MODELS/shapes-fast.pt" --slow "$MODELS/shapes-slow.pt" \
    --rerank 1,5,10,20,50 --queries "$QUERIES" --seed 0 --device cpu --json > benchmarks/results/shapes.json
.venv/bin/python benchmarks/plot_evaluation.py benchmarks/results/shapes-fast-plain.json \
    benchmarks/results/shapes.json docs/evaluation-recall-vs-time.png
