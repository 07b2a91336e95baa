#!/usr/bin/env bash
# The checks for a machine with an NVIDIA GPU, in one prepared run:
#   1. the whole test suite on wgpu (Vulkan through the NVIDIA driver),
#   2. bench_report --quick on wgpu,
#   3. the same two on CUDA, if Burn's CUDA backend builds there.
# Results go to $OUT (default ./device-check), one log per step and a
# summary.txt; the script never stops at a failing step.
#
#   bash scripts/device-check.sh            # or: OUT=/path bash scripts/device-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device-check}"
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"

run() { # name, command...
    local name=$1; shift
    local start=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    printf '%-22s rc=%-3s %5ss  %s\n' "$name" "$rc" "$((SECONDS - start))" "$*" | tee -a "$summary"
    return $rc
}

{
    echo "date: $(date -u)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
    rustc --version; cargo --version
} > "$OUT/machine.txt" 2>&1

export CARGO_TERM_COLOR=never
for backend in wgpu cuda; do
    export CARGO_TARGET_DIR="target/$backend"
    if ! run "build-$backend" cargo test --release --features "$backend" --tests --no-run; then
        echo "$backend: does not build here, skipped" | tee -a "$summary"
        continue
    fi
    BURN_EXPLAINABLE_TEST_BACKEND=$backend run "tests-$backend" \
        cargo test --release --features "$backend" --tests
    run "bench-$backend" cargo run --release --features "$backend" --example bench_report -- \
        --backend "$backend" --quick
    cp "$OUT/bench-$backend.log" "$OUT/bench-$backend.jsonl" 2>/dev/null
    grep -E '^test result|FAILED|panicked' "$OUT/tests-$backend.log" >> "$summary" || true
done
echo "results in $OUT" | tee -a "$summary"
