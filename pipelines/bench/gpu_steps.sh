#!/usr/bin/env bash
# The benchmark's GPU mode, one prepared run (under 8 minutes on one GPU): training steps at COCO's
# 1333x800, batch 2, the paper's R-101 teacher and R-18 student: the baseline, mmdet's LD, ours (main LD;
# main + VLR with the teacher as it runs by default and in float32; offline LD, main and + VLR, from the teacher
# cache its warm-up steps fill), and the teacher's levers.
# Writes bench_coco_steps_cuda.json and .md into $OUT (default results/bench):
#   bash pipelines/bench/gpu_steps.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-results/bench}"
mkdir -p "$out"
timeout 470 python pipelines/bench/bench.py --shapes coco --device cuda --steps-only --rounds 2 \
  --out "$out/bench_coco_steps_cuda.json"
