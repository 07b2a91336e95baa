#!/usr/bin/env bash
# Times the PyTorch peers (pytorch-grad-cam, Captum, TorchCAM) on the
# workloads of `bench_report`, printing the same JSON lines:
#
#   bash benches/peers/run.sh [--threads 2] [--reps 5] [--workloads resnet50_b8,resnet18_b1]
#
# The first run makes a virtual environment with the pinned requirements
# (default: ~/.cache/burn-explainable/peers-venv; override with
# BURN_EXPLAINABLE_PEERS_VENV). Compare with, in the same sitting:
#
#   OMP_NUM_THREADS=1 cargo run --release --features tch --example bench_report -- \
#       --backend tch --models resnet50 --batches 8 --targets 1
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${BURN_EXPLAINABLE_PEERS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/burn-explainable/peers-venv}"
if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --requirement "$here/requirements.txt" >&2
    touch "$venv/.complete"
fi
exec "$venv/bin/python" "$here/peers.py" "$@"
