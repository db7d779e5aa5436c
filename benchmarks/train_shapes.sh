#!/usr/bin/env bash
# Train Glimpse's own models on a synthetic set: Slow, Fast, then Fast distilled from Slow. CPU only, seeded,
# fixed step counts. For the `shapes` style (the default) it writes the shipped
# resources/models/shapes-{slow,fast-plain,fast}.pt; another style writes $WORK/models/STYLE-*.pt.
#
# The step counts are the issue's CPU budget (Slow 12 minutes, Fast 6, distillation 6 on a 2-core machine,
# that is 24, 12 and 12 CPU-minutes) divided by the CPU time a step of this recipe takes, measured
# single-threaded (benchmarks/results/recipe-speed.json): about 30 minutes on a quiet 2-core machine in all,
# data set and teacher scoring included.
#
# Usage: [STYLE=shapes] [SEED=0] [WORK=build/STYLE] [MODELS=DIR] benchmarks/train_shapes.sh
# Each stage's `--json` report goes to $WORK/reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
GLIMPSE=${GLIMPSE:-.venv/bin/glimpse}
# On a machine whose cores are shared, OpenMP threads that spin while waiting for a busy core slow a training
# step several-fold; sleeping waiters keep two threads faster than one.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
STYLE=${STYLE:-shapes}
SEED=${SEED:-0}
WORK=${WORK:-build/$STYLE}
if [ "$STYLE" = shapes ]; then MODELS=${MODELS:-resources/models}; else MODELS=${MODELS:-$WORK/models}; fi
SLOW_STEPS=${SLOW_STEPS:-2400}
FAST_STEPS=${FAST_STEPS:-1600}
DISTILL_STEPS=${DISTILL_STEPS:-1500}
SLOW=$MODELS/$STYLE-slow.pt PLAIN=$MODELS/$STYLE-fast-plain.pt DISTILLED=$MODELS/$STYLE-fast.pt
mkdir -p "$WORK/reports" "$MODELS"
[ -f "$WORK/data/dataset.json" ] || "$GLIMPSE" dataset synth "$WORK/data" --images 12000 --seed 0 --style "$STYLE"
COMMON=(--seed "$SEED" --device cpu --json)
"$GLIMPSE" train slow "$WORK/data" --out "$SLOW" --steps "$SLOW_STEPS" "${COMMON[@]}" \
    > "$WORK/reports/slow-$SEED.json"
"$GLIMPSE" train fast "$WORK/data" --out "$PLAIN" --steps "$FAST_STEPS" "${COMMON[@]}" \
    > "$WORK/reports/fast-plain-$SEED.json"
# The student starts from the plain Fast model, which also mines its hard candidates.
"$GLIMPSE" train distill "$WORK/data" --out "$DISTILLED" --teacher "$SLOW" --init "$PLAIN" --lr 5e-4 \
    --steps "$DISTILL_STEPS" "${COMMON[@]}" > "$WORK/reports/fast-distilled-$SEED.json"
ls -l "$SLOW" "$PLAIN" "$DISTILLED"
