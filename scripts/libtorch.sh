#!/usr/bin/env bash
# A CPU libtorch for Burn's LibTorch backend (the `tch` feature), built from
# PyPI wheels, for machines that reach PyPI but not download.pytorch.org.
#
# torch-sys 0.22 expects libtorch 2.9.0. PyPI has only the CUDA build of the
# torch 2.9.0 wheel; its CPU library (libtorch_cpu.so) needs two small CUDA
# runtime libraries (libcudart, libcupti), taken from their own wheels. The
# 1 GB of CUDA kernels is left out, and libtorch.so points at libtorch_cpu.so,
# so the result is a CPU libtorch of about 0.5 GB.
#
#   eval "$(bash scripts/libtorch.sh)"   # sets LIBTORCH and LD_LIBRARY_PATH
#   cargo test --features tch            # with BURN_EXPLAINABLE_TEST_BACKEND=tch
#
# The folder is kept between runs (default: ~/.cache/burn-explainable;
# override with BURN_EXPLAINABLE_LIBTORCH_DIR) and made only once.
set -euo pipefail
TORCH_VERSION=2.9.0
CUDA_RUNTIME_VERSION=12.8.90 # what torch 2.9.0's wheel requires
dir="${BURN_EXPLAINABLE_LIBTORCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/burn-explainable/libtorch-$TORCH_VERSION-cpu}"
python="${PYTHON:-python3}"

if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    wheels="$dir/.wheels"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" \
        "torch==$TORCH_VERSION" \
        "nvidia-cuda-runtime-cu12==$CUDA_RUNTIME_VERSION" \
        "nvidia-cuda-cupti-cu12==$CUDA_RUNTIME_VERSION" >&2
    "$python" - "$wheels" "$dir" <<'EOF'
import glob, os, shutil, sys, zipfile

wheels, out = sys.argv[1], sys.argv[2]
lib = os.path.join(out, "lib")
os.makedirs(lib, exist_ok=True)
# The CPU part of torch's lib/ folder, and its headers and CMake files.
cpu_libs = {"libc10.so", "libgomp.so.1", "libshm.so", "libtorch_cpu.so", "libtorch_global_deps.so"}
(torch,) = glob.glob(os.path.join(wheels, "torch-*.whl"))
with zipfile.ZipFile(torch) as z:
    for info in z.infolist():
        name = info.filename
        if name.startswith(("torch/include/", "torch/share/")) or (
            name.startswith("torch/lib/") and os.path.basename(name) in cpu_libs
        ):
            target = os.path.join(out, name[len("torch/"):])
            if name.endswith("/"):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if name.startswith("torch/lib/"):
                os.chmod(target, 0o755)
# libtorch_cpu.so's two CUDA runtime dependencies.
for pattern, member in [("nvidia_cuda_runtime_cu12-*.whl", "libcudart.so.12"),
                        ("nvidia_cuda_cupti_cu12-*.whl", "libcupti.so.12")]:
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith("/" + member)]
        with z.open(name) as src, open(os.path.join(lib, member), "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(os.path.join(lib, member), 0o755)
# torch-sys links libtorch and libtorch_cpu: the CPU library serves both.
os.symlink("libtorch_cpu.so", os.path.join(lib, "libtorch.so"))
EOF
    rm -rf "$wheels"
    # torch-sys checks this against the version it expects.
    echo "$TORCH_VERSION" > "$dir/build-version"
    touch "$dir/.complete"
fi
printf 'export LIBTORCH=%q\n' "$dir"
printf 'export LD_LIBRARY_PATH=%q\n' "$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
