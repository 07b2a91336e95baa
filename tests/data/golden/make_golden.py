#!/usr/bin/env python3
"""Golden reference vectors for a Burn port of keras-explainable.

Runs the *real* keras-explainable (lucasdavid/keras-explainable, main @ 6ceae98,
2022-11-29, == release 0.0.2 for everything under src/) on two tiny,
deterministic Keras CNNs and stores every input, weight and output as .npz.

It then re-derives every output a second time with an independent
re-implementation written from the specification of each method,
using only TF primitives + GradientTape and a hand-written numpy bilinear
resize, and records the max abs differences in manifest.json.  If the spec
and the library disagree the script exits non-zero.

Environment (known to work):
    python 3.11, tensorflow-cpu==2.12.1 (ships keras==2.12.0), numpy==1.24.3,
    pillow (keras_explainable.utils imports PIL but does not declare it).
    keras-explainable is NOT on PyPI: put its `src/` folder on PYTHONPATH, e.g.
      git -C <snapshot> archive 6ceae98 src | tar -x -C <keras-explainable-src>
      PYTHONPATH=<keras-explainable-src>/src <venv>/bin/python make_golden.py --out <dir>
    or `pip install git+https://github.com/lucasdavid/keras-explainable@6ceae98cc0b1f37ead59a826cf0e8b6a9b47aa1e`.

Options (all default to the public set, which is reproduced bit-identically
when none is given): --seed, --batch, --height, --width, --n-indices,
--nonsquare-size BxHxW, --indices, --indices-nonsquare, --filters-shape BxHxWxC.
They make another set with the same files/keys/meaning but other numbers and
shapes, e.g.
    make_golden.py --out <dir> --seed 7 --height 20 --width 36 --n-indices 3
When any option differs from its default, manifest.json gets a
"generator_options" entry (it is absent from the public manifest).

Layouts: every image-like array is NHWC (batch, height, width, channels),
float32.  Keras conv kernels are HWIO (kh, kw, c_in, c_out); a copy in OIHW
(Burn Conv2d layout) is stored too.  Dense kernels are (in, out) (== Burn Linear).
"""

import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_explainable as ke  # noqa: E402

LIB_COMMIT = "6ceae98cc0b1f37ead59a826cf0e8b6a9b47aa1e"
SEED = 47884  # default --seed: largest ReLU margin (3.2e-6) of seeds 1..60000 for the default
#               shapes; the first public set used 20240611, whose margin was 8.9e-8 (see README)
H, W, CIN, K1, K2, L = 32, 32, 3, 8, 16, 10  # H, W: default --height/--width
B = 3  # default --batch
N_IDX = 2  # default --n-indices
NS_SIZE = (2, 24, 40)  # default --nonsquare-size (B, H, W)
FILTERS_SHAPE = (2, 5, 6, 3)  # default --filters-shape (B, H, W, C)
DEFAULT_IDX = [[1, 7], [4, 2], [9, 0]]  # used when --indices is absent and shape is (3, 2)
DEFAULT_IDX_NS = [[3, 5], [8, 3]]  # used when --indices-nonsquare is absent and shape is (2, 2)
SMOOTH_REPS = 4
BN_EPS = 1e-3  # Keras BatchNormalization default (used by the forward pass)
LIB_BN_EPS = 1e-7  # hard-coded in keras_explainable.inspection.biases()

LAY = tf.keras.layers


# --------------------------------------------------------------------------
# models and weights
# --------------------------------------------------------------------------


def build_model(with_bn: bool) -> tf.keras.Model:
    x = tf.keras.Input((None, None, CIN), name="input")
    y = LAY.Conv2D(K1, 3, padding="same", name="conv1")(x)
    if with_bn:
        y = LAY.BatchNormalization(epsilon=BN_EPS, name="bn1")(y)
    y = LAY.ReLU(name="relu1")(y)
    y = LAY.Conv2D(K2, 3, padding="same", name="conv2")(y)
    y = LAY.ReLU(name="relu2")(y)
    y = LAY.GlobalAveragePooling2D(name="gap")(y)
    y = LAY.Dense(L, name="logits")(y)  # raw logits, no softmax
    return tf.keras.Model(x, y, name="model_b" if with_bn else "model_a")


def make_weights(rng: np.random.Generator, with_bn: bool) -> dict:
    w = {
        "conv1.kernel": rng.normal(0, np.sqrt(2 / (9 * CIN)), (3, 3, CIN, K1)),
        "conv1.bias": rng.uniform(-0.1, 0.1, (K1,)),
        "conv2.kernel": rng.normal(0, np.sqrt(2 / (9 * K1)), (3, 3, K1, K2)),
        "conv2.bias": rng.uniform(-0.1, 0.1, (K2,)),
        "logits.kernel": rng.normal(0, 1 / np.sqrt(K2), (K2, L)),
        "logits.bias": rng.uniform(-0.1, 0.1, (L,)),
    }
    if with_bn:
        w.update({
            "bn1.gamma": rng.uniform(0.5, 1.5, (K1,)),
            "bn1.beta": rng.uniform(-0.2, 0.2, (K1,)),
            "bn1.moving_mean": rng.uniform(-0.2, 0.2, (K1,)),
            "bn1.moving_variance": rng.uniform(0.5, 1.5, (K1,)),
        })
    return {k: v.astype(np.float32) for k, v in w.items()}


def load_weights(model: tf.keras.Model, w: dict):
    model.get_layer("conv1").set_weights([w["conv1.kernel"], w["conv1.bias"]])
    model.get_layer("conv2").set_weights([w["conv2.kernel"], w["conv2.bias"]])
    model.get_layer("logits").set_weights([w["logits.kernel"], w["logits.bias"]])
    if "bn1.gamma" in w:
        model.get_layer("bn1").set_weights([
            w["bn1.gamma"], w["bn1.beta"], w["bn1.moving_mean"], w["bn1.moving_variance"]
        ])


def with_burn_layouts(w: dict) -> dict:
    out = dict(w)
    for k, v in w.items():
        if k.endswith(".kernel") and v.ndim == 4:
            out[k.replace(".kernel", ".weight_oihw")] = np.ascontiguousarray(
                v.transpose(3, 2, 0, 1))
    return out


# --------------------------------------------------------------------------
# independent re-implementation of the spec (NOT the library's code)
# --------------------------------------------------------------------------


def np_resize_bilinear(x: np.ndarray, size) -> np.ndarray:
    """TF2 tf.image.resize(method='bilinear', antialias=False) on NHWC.

    half-pixel centres: src = (dst + 0.5) * in/out - 0.5, the two taps are
    clamp(floor(src)) and clamp(ceil(src)), weight = src - floor(src).
    """
    x = np.asarray(x, np.float64)
    oh, ow = int(size[0]), int(size[1])

    def taps(n_in, n_out):
        s = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        f = np.floor(s)
        lo = np.clip(f, 0, n_in - 1).astype(int)
        hi = np.clip(np.ceil(s), 0, n_in - 1).astype(int)
        return lo, hi, (s - f)

    y0, y1, wy = taps(x.shape[1], oh)
    x0, x1, wx = taps(x.shape[2], ow)
    top = x[:, y0] * (1 - wy)[None, :, None, None] + x[:, y1] * wy[None, :, None, None]
    return top[:, :, x0] * (1 - wx)[None, None, :, None] + top[:, :, x1] * wx[None, None, :, None]


def np_minmax(x, axis=(1, 2)):
    x = np.asarray(x, np.float64)
    x = x - x.min(axis=axis, keepdims=True)
    mx = x.max(axis=axis, keepdims=True)
    return np.divide(x, mx, out=np.zeros_like(x), where=mx != 0)


class RefNet:
    """Forward pass of the golden CNNs written with tf.nn primitives."""

    def __init__(self, w: dict):
        self.w = {k: tf.constant(v) for k, v in w.items()}
        self.bn = "bn1.gamma" in w

    def __call__(self, x):
        w = self.w
        t = {}
        t["conv1"] = tf.nn.conv2d(x, w["conv1.kernel"], 1, "SAME") + w["conv1.bias"]
        h = t["conv1"]
        if self.bn:
            t["bn1"] = (h - w["bn1.moving_mean"]) / tf.sqrt(
                w["bn1.moving_variance"] + BN_EPS) * w["bn1.gamma"] + w["bn1.beta"]
            h = t["bn1"]
        t["relu1"] = tf.nn.relu(h)
        t["conv2"] = tf.nn.conv2d(t["relu1"], w["conv2.kernel"], 1, "SAME") + w["conv2.bias"]
        t["relu2"] = tf.nn.relu(t["conv2"])
        t["gap"] = tf.reduce_mean(t["relu2"], axis=(1, 2))
        t["logits"] = tf.matmul(t["gap"], w["logits.kernel"]) + w["logits.bias"]
        return t


def ref_select(logits, idx):
    return np.take_along_axis(np.asarray(logits), np.asarray(idx), axis=1)


def ref_jacobian(net, x, idx, source):
    """J[b, n, ...] = d logits[b, idx[b, n]] / d source[b, ...] (one backward per n)."""
    x = tf.constant(x)
    idx = np.asarray(idx)
    rows = []
    for n in range(idx.shape[1]):
        with tf.GradientTape() as tape:
            tape.watch(x)
            t = net(x)
            s = tf.reduce_sum(tf.gather(t["logits"], idx[:, n], axis=1, batch_dims=1))
        src = x if source == "input" else t[source]
        rows.append(tape.gradient(s, src).numpy())
    return np.stack(rows, axis=1).astype(np.float64), t


def ref_cam(net, x, idx, act="relu2"):
    t = net(tf.constant(x))
    a = t[act].numpy().astype(np.float64)
    wk = net.w["logits.kernel"].numpy().astype(np.float64)  # (K, L)
    wsel = wk[:, idx]  # (K, B, N)
    return ref_select(t["logits"], idx), np.einsum("bhwk,kbn->bhwn", a, wsel)


def ref_gradcam(net, x, idx, act="relu2"):
    j, t = ref_jacobian(net, x, idx, act)  # (B,N,h,w,K)
    a = t[act].numpy().astype(np.float64)
    wts = j.mean(axis=(2, 3))  # (B,N,K)
    return ref_select(t["logits"], idx), np.einsum("bhwk,bnk->bhwn", a, wts)


def ref_gradcampp(net, x, idx, act="relu2"):
    j, t = ref_jacobian(net, x, idx, act)
    a = t[act].numpy().astype(np.float64)
    s = ref_select(t["logits"], idx).astype(np.float64)
    g2, g3 = j ** 2, j ** 3
    asum = a.sum(axis=(1, 2))  # (B,K)
    den = 2 * g2 + asum[:, None, None, None, :] * g3
    alpha = np.divide(g2, den, out=np.zeros_like(g2), where=den != 0)
    relu_dyda = np.maximum(np.exp(s)[:, :, None, None, None] * j, 0)
    wts = (alpha * relu_dyda).sum(axis=(2, 3))  # (B,N,K)
    return s, np.einsum("bnk,bhwk->bhwn", wts, a)


def ref_scorecam(net, x, idx, act="relu2"):
    t = net(tf.constant(x))
    a = t[act].numpy()
    b, hh, ww = x.shape[:3]
    maps = np.zeros((b, hh, ww, idx.shape[1]))
    for k in range(a.shape[-1]):
        m = np_resize_bilinear(np_minmax(a[..., k:k + 1]), (hh, ww))  # (B,H,W,1)
        sk = ref_select(net(tf.constant((x * m).astype(np.float32)))["logits"], idx)
        maps += sk[:, None, None, :] * m
    return ref_select(t["logits"], idx), maps


def ref_gradients(net, x, idx):
    j, t = ref_jacobian(net, x, idx, "input")  # (B,N,H,W,C)
    return ref_select(t["logits"], idx), np.abs(j).mean(-1).transpose(0, 2, 3, 1)


def ref_full_gradients(net, x, idx, bias_layers, bias_vectors):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        t = net(xt)
        s = tf.reduce_sum(tf.gather(t["logits"], idx, axis=1, batch_dims=1))  # SUM over n
    grads = tape.gradient(s, [xt] + [t[n] for n in bias_layers])
    size = x.shape[1:3]

    def term(v, g):
        return np_resize_bilinear(np_minmax(np.abs(np.asarray(v, np.float64) * g.numpy())).mean(
            -1, keepdims=True), size)

    maps = term(x, grads[0])
    for bvec, g in zip(bias_vectors, grads[1:]):
        maps = maps + term(bvec, g)
    return ref_select(t["logits"], idx), maps


def ref_tta(fn, x, scales=(0.5, 1.5, 2.0), hflip=True):
    size = x.shape[1:3]
    passes = [(None, False)] + ([(None, True)] if hflip else [])
    for s in scales:
        passes += [(s, False)] + ([(s, True)] if hflip else [])
    lsum, msum = 0.0, 0.0
    for s, f in passes:
        xi = x[:, :, ::-1] if f else x
        if s is not None:
            xi = np_resize_bilinear(xi, (int(np.float32(s) * np.float32(size[0])),
                                         int(np.float32(s) * np.float32(size[1]))))
        lg, mp = fn(xi.astype(np.float32))
        if f:
            mp = mp[:, :, ::-1]
        lsum = lsum + lg
        msum = msum + np_resize_bilinear(mp, size)
    div = len(scales) * (2 if hflip else 1)  # library's divisor (see spec: off-by-one)
    return lsum / div, msum / div, len(passes), div


def ref_postprocess(maps, kind, size=None):
    if kind == "positive_normalize":
        maps = np_minmax(np.maximum(maps, 0))
    elif kind == "normalize":
        maps = np_minmax(maps)
    elif kind == "absolute_normalize":
        maps = np_minmax(np.abs(maps))
    if size is not None:
        maps = np_resize_bilinear(maps, size)
    return maps


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------


class Recorder:
    def __init__(self, out):
        self.out = out
        self.files = {}
        self.manifest = {"arrays": {}, "checks": {}}

    def add(self, file, key, arr, call):
        arr = np.asarray(arr)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if arr.dtype == np.int64:
            arr = arr.astype(np.int32)
        self.files.setdefault(file, {})[key] = np.ascontiguousarray(arr)
        self.manifest["arrays"][f"{file}:{key}"] = {
            "shape": list(arr.shape), "dtype": str(arr.dtype), "call": call}

    def check(self, name, got, ref, tol):
        got = np.asarray(got, np.float64)
        ref = np.asarray(ref, np.float64)
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        # tolerance is relative to the largest |value| of the reference array
        scale = max(float(np.abs(ref).max()), 1e-30)
        err = float(np.abs(got - ref).max())
        ok = err <= tol * scale
        self.manifest["checks"][name] = {
            "max_abs_diff": err, "ref_max_abs": float(np.abs(ref).max()),
            "rel_diff": err / scale, "rel_tol": tol, "ok": bool(ok)}
        print(f"  check {name:44s} max|diff|={err:.2e} rel={err / scale:.2e} {'OK' if ok else 'FAIL'}")
        return ok

    def save(self):
        os.makedirs(self.out, exist_ok=True)
        for f, arrays in self.files.items():
            np.savez(os.path.join(self.out, f), **arrays)
        with open(os.path.join(self.out, "manifest.json"), "w") as fh:
            json.dump(self.manifest, fh, indent=1, sort_keys=True)


def lib_fingerprint():
    root = os.path.dirname(ke.__file__)
    h = {}
    for dp, _, fs in os.walk(root):
        for f in sorted(fs):
            if f.endswith(".py"):
                p = os.path.join(dp, f)
                h[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return h


def _dims(text, n, name):
    try:
        v = tuple(int(t) for t in text.lower().split("x"))
    except ValueError:
        v = ()
    if len(v) != n or min(v) < 1:
        raise SystemExit(f"{name}: expected {n} positive integers joined by 'x', got {text!r}")
    return v


def _indices(text, shape, default, seed_key, seed, name):
    """Explicit 'a,b;c,d' > the fixed default (when the shape matches) > derived from the seed."""
    b, n = shape
    if text is not None:
        idx = np.array([[int(t) for t in row.split(",")] for row in text.split(";")], dtype=np.int32)
        if idx.shape != (b, n):
            raise SystemExit(f"{name}: expected shape {(b, n)}, got {idx.shape}")
        how = "fixed"
    elif (b, n) == np.shape(default):
        idx, how = np.array(default, dtype=np.int32), "fixed"
    else:
        irng = np.random.default_rng([seed, seed_key])  # separate stream: the main rng is untouched
        idx = np.stack([irng.permutation(L)[:n] for _ in range(b)]).astype(np.int32)
        how = (f"np.random.default_rng([seed,{seed_key}]); row b = permutation({L})[:{n}]"
               "  # distinct units per sample")
    if idx.min() < 0 or idx.max() >= L:
        raise SystemExit(f"{name}: indices must be in [0, {L})")
    return idx, how


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--seed", type=int, default=SEED,
                    help="numpy rng seed for weights/inputs and tf.random seed for smooth noise")
    ap.add_argument("--batch", type=int, default=B, help="batch of the main input x")
    ap.add_argument("--height", type=int, default=H, help="height of the main input x")
    ap.add_argument("--width", type=int, default=W, help="width of the main input x")
    ap.add_argument("--n-indices", type=int, default=N_IDX,
                    help="units per sample for indices and indices_nonsquare")
    ap.add_argument("--nonsquare-size", default="x".join(map(str, NS_SIZE)),
                    help="BxHxW of x_nonsquare (channels stay 3)")
    ap.add_argument("--indices", default=None,
                    help="explicit indices for x, rows ';'-separated, e.g. '1,7;4,2;9,0'")
    ap.add_argument("--indices-nonsquare", default=None,
                    help="explicit indices for x_nonsquare, e.g. '3,5;8,3'")
    ap.add_argument("--filters-shape", default="x".join(map(str, FILTERS_SHAPE)),
                    help="BxHxWxC of filters.npz:x (B >= 2, C >= 3)")
    args = ap.parse_args(argv)
    args.nonsquare_size = _dims(args.nonsquare_size, 3, "--nonsquare-size")
    args.filters_shape = _dims(args.filters_shape, 4, "--filters-shape")
    if min(args.batch, args.height, args.width) < 1:
        raise SystemExit("--batch/--height/--width must be >= 1")
    if not 1 <= args.n_indices <= L:
        raise SystemExit(f"--n-indices must be in [1, {L}]")
    if args.filters_shape[0] < 2 or args.filters_shape[3] < 3:
        raise SystemExit("--filters-shape needs B >= 2 and C >= 3 (constant / all-negative channels)")
    args.idx, args.idx_how = _indices(args.indices, (args.batch, args.n_indices), DEFAULT_IDX, 1,
                                      args.seed, "--indices")
    args.idx_ns, args.idx_ns_how = _indices(args.indices_nonsquare,
                                            (args.nonsquare_size[0], args.n_indices), DEFAULT_IDX_NS,
                                            2, args.seed, "--indices-nonsquare")
    args.options = {
        "seed": args.seed, "batch": args.batch, "height": args.height, "width": args.width,
        "n_indices": args.n_indices, "nonsquare_size": list(args.nonsquare_size),
        "indices": args.idx.tolist(), "indices_nonsquare": args.idx_ns.tolist(),
        "filters_shape": list(args.filters_shape)}
    defaults = {
        "seed": SEED, "batch": B, "height": H, "width": W, "n_indices": N_IDX,
        "nonsquare_size": list(NS_SIZE), "indices": DEFAULT_IDX, "indices_nonsquare": DEFAULT_IDX_NS,
        "filters_shape": list(FILTERS_SHAPE)}
    args.is_default = args.options == defaults
    return args


def main():
    args = parse_args()
    seed = args.seed
    B, H, W = args.batch, args.height, args.width  # shadow the module defaults
    NB, NH, NW = args.nonsquare_size
    n_idx = args.n_indices

    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)

    R = Recorder(args.out)
    R.manifest["env"] = {
        "tensorflow": tf.__version__, "keras": tf.keras.__version__,
        "numpy": np.__version__, "python": sys.version.split()[0],
        "keras_explainable_commit": LIB_COMMIT, "keras_explainable_files_sha256": lib_fingerprint(),
        "seed": seed}
    if not args.is_default:  # absent from the public manifest, which used the defaults
        argv, skip = [], False  # the command line minus --out, so the manifest is path-independent
        for a in sys.argv[1:]:
            if skip or a == "--out" or a.startswith("--out="):
                skip = a == "--out"
                continue
            argv.append(a)
        R.manifest["generator_options"] = dict(args.options, argv=argv)
    ok = True

    # ---------------- weights / models ----------------
    wa = make_weights(rng, with_bn=False)
    wb = make_weights(rng, with_bn=True)
    model_a, model_b = build_model(False), build_model(True)
    load_weights(model_a, wa)
    load_weights(model_b, wb)
    for k, v in with_burn_layouts(wa).items():
        R.add("weights_model_a.npz", k, v, "numpy rng (see make_weights)")
    for k, v in with_burn_layouts(wb).items():
        R.add("weights_model_b.npz", k, v, "numpy rng (see make_weights)")
    net_a, net_b = RefNet(wa), RefNet(wb)

    # ---------------- inputs ----------------
    x = rng.uniform(-1, 1, (B, H, W, CIN)).astype(np.float32)
    idx = args.idx
    x_ns = rng.uniform(-1, 1, (NB, NH, NW, CIN)).astype(np.float32)  # non-square
    idx_ns = args.idx_ns
    R.add("inputs.npz", "x", x, f"rng.uniform(-1,1,({B},{H},{W},{CIN}))")
    R.add("inputs.npz", "indices", idx, args.idx_how)
    R.add("inputs.npz", "x_nonsquare", x_ns, f"rng.uniform(-1,1,({NB},{NH},{NW},{CIN}))")
    R.add("inputs.npz", "indices_nonsquare", idx_ns, args.idx_ns_how)
    xt, it = tf.constant(x), tf.constant(idx)
    xnt, int_ = tf.constant(x_ns), tf.constant(idx_ns)

    # intermediate activations (debug aids)
    for name, model, net in (("a", model_a, net_a), ("b", model_b, net_b)):
        t = net(xt)
        R.check(f"forward_model_{name}_logits", model(xt).numpy(), t["logits"], 1e-5)
        ok &= R.manifest["checks"][f"forward_model_{name}_logits"]["ok"]
        R.add(f"intermediates_model_{name}.npz", "logits_all", model(xt).numpy(),
              f"model_{name}(x)  # all 10 logits")
        for n in ("relu1", "relu2") + (("bn1",) if name == "b" else ()):
            R.add(f"intermediates_model_{name}.npz", n, t[n].numpy(),
                  f"output of layer '{n}' for x")

    # ---------------- exposure ----------------
    exp_a = ke.inspection.expose(model_a)  # -> [logits, input of gap == relu2 output]
    exp_a_r1 = ke.inspection.expose(model_a, "relu1")  # -> [logits, relu1 output]
    exp_b = ke.inspection.expose(model_b)
    R.manifest["expose"] = {
        "expose(model_a)": [o.name for o in exp_a.outputs],
        "expose(model_a,'relu1')": [o.name for o in exp_a_r1.outputs],
    }

    cams = ke.methods.cams
    grad = ke.methods.gradient
    meta = ke.methods.meta

    def rec_pair(file, key, res, call):
        R.add(file, key + ".logits", res[0].numpy() if hasattr(res[0], "numpy") else res[0], call)
        R.add(file, key + ".maps", res[1].numpy() if hasattr(res[1], "numpy") else res[1], call)
        return [np.asarray(r) for r in res]

    def chk(name, got, ref, tol=1e-4):
        nonlocal ok
        ok &= R.check(name + ".logits", got[0], ref[0], tol)
        ok &= R.check(name + ".maps", got[1], ref[1], tol)

    print("[raw CAM methods, model_a, expose default (relu2)]")
    F = "cams_model_a.npz"
    g = rec_pair(F, "cam", cams.cam(exp_a, xt, it), "ke.methods.cams.cam(expose(model_a), x, indices)")
    chk("cam", g, ref_cam(net_a, x, idx))
    g = rec_pair(F, "cam_all", cams.cam(exp_a, xt), "ke.methods.cams.cam(expose(model_a), x)  # indices=None")
    chk("cam_all", g, ref_cam(net_a, x, np.tile(np.arange(L), (B, 1))))
    g = rec_pair(F, "gradcam", cams.gradcam(exp_a, xt, it), "ke.methods.cams.gradcam(expose(model_a), x, indices)")
    chk("gradcam", g, ref_gradcam(net_a, x, idx))
    g = rec_pair(F, "gradcampp", cams.gradcampp(exp_a, xt, it), "ke.methods.cams.gradcampp(expose(model_a), x, indices)")
    chk("gradcampp", g, ref_gradcampp(net_a, x, idx))
    g = rec_pair(F, "scorecam", cams.scorecam(exp_a, xt, it), "ke.methods.cams.scorecam(expose(model_a), x, indices)")
    chk("scorecam", g, ref_scorecam(net_a, x, idx))

    print("[raw CAM methods, model_a, expose(model_a, 'relu1')]")
    F = "cams_model_a_relu1.npz"
    g = rec_pair(F, "gradcam", cams.gradcam(exp_a_r1, xt, it), "ke.methods.cams.gradcam(expose(model_a,'relu1'), x, indices)")
    chk("gradcam_relu1", g, ref_gradcam(net_a, x, idx, "relu1"))
    g = rec_pair(F, "gradcam_all", cams.gradcam(exp_a_r1, xt), "ke.methods.cams.gradcam(expose(model_a,'relu1'), x)  # indices=None")
    chk("gradcam_relu1_all", g, ref_gradcam(net_a, x, np.tile(np.arange(L), (B, 1)), "relu1"))
    g = rec_pair(F, "gradcampp", cams.gradcampp(exp_a_r1, xt, it), "ke.methods.cams.gradcampp(expose(model_a,'relu1'), x, indices)")
    chk("gradcampp_relu1", g, ref_gradcampp(net_a, x, idx, "relu1"))
    g = rec_pair(F, "scorecam", cams.scorecam(exp_a_r1, xt, it), "ke.methods.cams.scorecam(expose(model_a,'relu1'), x, indices)")
    chk("scorecam_relu1", g, ref_scorecam(net_a, x, idx, "relu1"))

    print("[raw gradient methods, model_a]")
    F = "gradient_model_a.npz"
    g = rec_pair(F, "gradients", grad.gradients(model_a, xt, it), "ke.methods.gradient.gradients(model_a, x, indices)")
    chk("gradients", g, ref_gradients(net_a, x, idx))
    lg_a = ke.inspection.get_logits_layer(model_a)
    inters_a, biases_a = ke.inspection.layers_with_biases(model_a, exclude=[lg_a])
    fg_a = ke.inspection.expose(model_a, inters_a, lg_a)
    R.manifest["expose"]["full_gradients model_a"] = [o.name for o in fg_a.outputs]
    g = rec_pair(F, "full_gradients", grad.full_gradients(fg_a, xt, it, biases=biases_a),
                 "ke.methods.gradient.full_gradients(expose(model_a, inters, logits_layer), x, indices, biases=biases)")
    chk("full_gradients", g, ref_full_gradients(net_a, x, idx, ["conv1", "conv2"],
                                                [wa["conv1.bias"], wa["conv2.bias"]]))
    g2 = grad.full_gradients(fg_a, xt, it)  # biases inferred
    ok &= R.check("full_gradients_inferred_biases_equal", g2[1].numpy(), g[1], 1e-6)
    g = rec_pair(F, "full_gradients_idx0", grad.full_gradients(fg_a, xt, it[:, :1], biases=biases_a),
                 "ke.methods.gradient.full_gradients(expose(model_a, inters, logits_layer), x, indices[:, :1], biases=biases)  # one unit")
    chk("full_gradients_idx0", g, ref_full_gradients(net_a, x, idx[:, :1], ["conv1", "conv2"],
                                                     [wa["conv1.bias"], wa["conv2.bias"]]))

    print("[model_b (BatchNorm)]")
    F = "model_b.npz"
    lg_b = ke.inspection.get_logits_layer(model_b)
    inters_b, biases_b = ke.inspection.layers_with_biases(model_b, exclude=[lg_b])
    R.manifest["layers_with_biases model_b"] = [l_.name for l_ in inters_b]
    bn_bias_ref = (wb["bn1.beta"].astype(np.float64) - wb["bn1.moving_mean"] * wb["bn1.gamma"]
                   / np.sqrt(wb["bn1.moving_variance"].astype(np.float64) + LIB_BN_EPS))
    R.add(F, "bn1_bias_from_library", biases_b[1].numpy(),
          "ke.inspection.layers_with_biases(model_b, exclude=[logits])[1][1]  # beta - mean*gamma/sqrt(var+1e-7)")
    ok &= R.check("bn1_bias_formula_eps_1e-7", biases_b[1].numpy(), bn_bias_ref, 1e-6)
    fg_b = ke.inspection.expose(model_b, inters_b, lg_b)
    R.manifest["expose"]["full_gradients model_b"] = [o.name for o in fg_b.outputs]
    g = rec_pair(F, "full_gradients", grad.full_gradients(fg_b, xt, it, biases=biases_b),
                 "ke.methods.gradient.full_gradients(expose(model_b, inters, logits_layer), x, indices, biases=biases)")
    chk("full_gradients_model_b", g, ref_full_gradients(
        net_b, x, idx, ["conv1", "bn1", "conv2"], [wb["conv1.bias"], bn_bias_ref, wb["conv2.bias"]]))
    g = rec_pair(F, "cam", cams.cam(exp_b, xt, it), "ke.methods.cams.cam(expose(model_b), x, indices)")
    chk("cam_model_b", g, ref_cam(net_b, x, idx))
    g = rec_pair(F, "gradcam", cams.gradcam(exp_b, xt, it), "ke.methods.cams.gradcam(expose(model_b), x, indices)")
    chk("gradcam_model_b", g, ref_gradcam(net_b, x, idx))
    g = rec_pair(F, "gradients", grad.gradients(model_b, xt, it), "ke.methods.gradient.gradients(model_b, x, indices)")
    chk("gradients_model_b", g, ref_gradients(net_b, x, idx))
    g = rec_pair(F, "explain_full_gradients", ke.full_gradients(fg_b, x, idx, biases=biases_b, batch_size=2, verbose=0),
                 "ke.full_gradients(fg_model_b, x, indices, biases=biases, batch_size=2)")
    rf = ref_full_gradients(net_b, x, idx, ["conv1", "bn1", "conv2"],
                            [wb["conv1.bias"], bn_bias_ref, wb["conv2.bias"]])
    chk("explain_full_gradients_model_b", g, (rf[0], ref_postprocess(rf[1], "normalize")))

    # FullGrad variant whose BN "bias" uses the layer's own epsilon (1e-3) instead of the
    # library's hard-coded 1e-7 (the port's fix).  Same call, explicit `biases=` list in the
    # library's own order (conv1, bn1, conv2); the conv entries are the conv biases.
    bn1 = model_b.get_layer("bn1")
    assert [l_.name for l_ in inters_b] == ["conv1", "bn1", "conv2"], [l_.name for l_ in inters_b]
    bn_bias_eps = (-bn1.moving_mean * bn1.gamma  # the library's expression, with layer.epsilon
                   / tf.sqrt(bn1.moving_variance + bn1.epsilon) + bn1.beta)
    biases_b_eps = [model_b.get_layer("conv1").bias, bn_bias_eps, model_b.get_layer("conv2").bias]
    bn_bias_ref_eps = (wb["bn1.beta"].astype(np.float64) - wb["bn1.moving_mean"] * wb["bn1.gamma"]
                       / np.sqrt(wb["bn1.moving_variance"].astype(np.float64) + BN_EPS))
    R.add(F, "bn1_bias_layer_eps", bn_bias_eps.numpy(),
          "beta - moving_mean*gamma/sqrt(moving_variance + bn1.epsilon)  # bn1.epsilon == 1e-3")
    ok &= R.check("bn1_bias_formula_layer_eps_1e-3", bn_bias_eps.numpy(), bn_bias_ref_eps, 1e-6)
    fg_refs_eps = ["conv1", "bn1", "conv2"], [wb["conv1.bias"], bn_bias_ref_eps, wb["conv2.bias"]]
    g = rec_pair(F, "full_gradients_bneps", grad.full_gradients(fg_b, xt, it, biases=biases_b_eps),
                 "ke.methods.gradient.full_gradients(expose(model_b, inters, logits_layer), x, indices,"
                 " biases=[conv1.bias, bn1_bias_layer_eps, conv2.bias])")
    rf = ref_full_gradients(net_b, x, idx, *fg_refs_eps)
    chk("full_gradients_bneps_model_b", g, rf)
    g = rec_pair(F, "explain_full_gradients_bneps",
                 ke.full_gradients(fg_b, x, idx, biases=biases_b_eps, batch_size=2, verbose=0),
                 "ke.full_gradients(fg_model_b, x, indices, biases=[conv1.bias, bn1_bias_layer_eps,"
                 " conv2.bias], batch_size=2)")
    chk("explain_full_gradients_bneps_model_b", g, (rf[0], ref_postprocess(rf[1], "normalize")))
    # informational: how far the two epsilon choices are apart (not a pass/fail check).  psi
    # (absolute_normalize) min-max-normalises |b_c * g_c| per (sample, channel) over space, so a
    # nonzero per-channel scalar b_c cancels: the variants differ only by float32 rounding.
    fb = R.files[F]
    rf_lib = ref_full_gradients(net_b, x, idx, ["conv1", "bn1", "conv2"],
                                [wb["conv1.bias"], bn_bias_ref, wb["conv2.bias"]])
    R.manifest["bn_epsilon_variants model_b"] = {
        "max_abs_diff reference float64 full_gradients.maps": float(np.abs(rf[1] - rf_lib[1]).max()),
        "max_abs_diff bn1 bias (1e-3 vs 1e-7)": float(np.abs(
            fb["bn1_bias_layer_eps"].astype(np.float64) - fb["bn1_bias_from_library"]).max()),
        "max_abs_diff full_gradients.maps": float(np.abs(
            fb["full_gradients_bneps.maps"].astype(np.float64) - fb["full_gradients.maps"]).max()),
        "max_abs_diff explain_full_gradients.maps": float(np.abs(
            fb["explain_full_gradients_bneps.maps"].astype(np.float64)
            - fb["explain_full_gradients.maps"]).max()),
    }

    print("[explain() shortcuts with default post-processing, batch_size=2]")
    F = "explain_model_a.npz"
    kw = dict(batch_size=2, verbose=0)
    label = {id(exp_a): "expose(model_a)", id(exp_a_r1): "expose(model_a,'relu1')",
             id(model_a): "model_a"}
    for name, fn, model, ref, post, resize in (
        ("cam", ke.cam, exp_a, ref_cam(net_a, x, idx), "positive_normalize", True),
        ("gradcam", ke.gradcam, exp_a, ref_gradcam(net_a, x, idx), "positive_normalize", True),
        ("gradcampp", ke.gradcampp, exp_a, ref_gradcampp(net_a, x, idx), "positive_normalize", True),
        ("scorecam", ke.scorecam, exp_a, ref_scorecam(net_a, x, idx), "positive_normalize", False),
        ("gradcam_relu1", ke.gradcam, exp_a_r1, ref_gradcam(net_a, x, idx, "relu1"), "positive_normalize", True),
        ("gradcampp_relu1", ke.gradcampp, exp_a_r1, ref_gradcampp(net_a, x, idx, "relu1"), "positive_normalize", True),
        ("gradients", ke.gradients, model_a, ref_gradients(net_a, x, idx), "normalize", False),
    ):
        g = rec_pair(F, name, fn(model, x, idx, **kw),
                     f"ke.{fn.__name__.replace('_explain', '')}({label[id(model)]}, x, indices, batch_size=2)"
                     f"  # postprocessing={post}, resizing={resize}")
        chk("explain_" + name, g, (ref[0], ref_postprocess(ref[1], post, (H, W) if resize else None)))
    g = rec_pair(F, "full_gradients", ke.full_gradients(fg_a, x, idx, biases=biases_a, **kw),
                 "ke.full_gradients(fg_model_a, x, indices, biases=biases, batch_size=2)")
    rf = ref_full_gradients(net_a, x, idx, ["conv1", "conv2"], [wa["conv1.bias"], wa["conv2.bias"]])
    chk("explain_full_gradients", g, (rf[0], ref_postprocess(rf[1], "normalize")))
    g = rec_pair(F, "explain_gradcam_nopost", ke.explain(cams.gradcam, exp_a, x, idx, **kw),
                 "ke.explain(ke.methods.cams.gradcam, expose(model_a), x, indices, batch_size=2)  # postprocessing=None, resizing=True")
    rg = ref_gradcam(net_a, x, idx)
    chk("explain_gradcam_nopost", g, (rg[0], ref_postprocess(rg[1], None, (H, W))))

    print("[tta]")
    F = "tta_model_a.npz"

    for name, method, model, ref_fn, kws in (
        ("tta_cam", cams.cam, exp_a, lambda xi: ref_cam(net_a, xi, idx), {}),
        ("tta_gradcam", cams.gradcam, exp_a, lambda xi: ref_gradcam(net_a, xi, idx), {}),
        ("tta_gradcam_relu1", cams.gradcam, exp_a_r1, lambda xi: ref_gradcam(net_a, xi, idx, "relu1"), {}),
        ("tta_gradients", grad.gradients, model_a, lambda xi: ref_gradients(net_a, xi, idx), {}),
        ("tta_gradcam_s1.5_noflip", cams.gradcam, exp_a, lambda xi: ref_gradcam(net_a, xi, idx),
         {"scales": [1.5], "hflip": False}),
    ):
        g = rec_pair(F, name, meta.tta(method, **kws)(model, xt, indices=it),
                     f"ke.methods.meta.tta({method.__module__.split('.')[-1]}.{method.__name__}"
                     f"{', **' + str(kws) if kws else ''})({label[id(model)]}, x, indices=indices)")
        rl, rm, npass, div = ref_tta(ref_fn, x, **kws)
        R.manifest["checks"][name + ".passes_vs_divisor"] = {"passes": npass, "divisor": div}
        chk(name, g, (rl, rm))
    g = rec_pair(F, "explain_tta_gradcam",
                 ke.explain(meta.tta(cams.gradcam), exp_a, x, idx, postprocessing=ke.filters.positive_normalize, **kw),
                 "ke.explain(ke.methods.meta.tta(cams.gradcam), expose(model_a), x, indices, postprocessing=ke.filters.positive_normalize, batch_size=2)")
    rl, rm, _, _ = ref_tta(lambda xi: ref_gradcam(net_a, xi, idx), x)
    chk("explain_tta_gradcam", g, (rl, ref_postprocess(rm, "positive_normalize", (H, W))))

    print("[smooth (noise captured and stored)]")
    F = "smooth_model_a.npz"
    captured = []
    orig_normal = tf.random.normal

    def recording_normal(*a, **k):
        r = orig_normal(*a, **k)
        captured.append(r.numpy())
        return r

    tf.random.normal = recording_normal
    try:
        tf.random.set_seed(seed)
        res = meta.smooth(grad.gradients, repetitions=SMOOTH_REPS, noise=0.1)(model_a, xt, it)
    finally:
        tf.random.normal = orig_normal
    assert len(captured) == 1, len(captured)
    noise = captured[0]
    R.add(F, "noise", noise, "tf.random.normal([repetitions-1, *x.shape], 0, 0.1) drawn inside smooth; noisy_i = x + noise[i]")
    g = rec_pair(F, "smooth_gradients", res,
                 "ke.methods.meta.smooth(ke.methods.gradient.gradients, repetitions=4, noise=0.1)(model_a, x, indices)")
    passes = [ref_gradients(net_a, x, idx)] + [
        ref_gradients(net_a, (x + noise[i]).astype(np.float32), idx) for i in range(SMOOTH_REPS - 1)]
    assert noise.shape == (SMOOTH_REPS - 1,) + x.shape, noise.shape
    chk("smooth_gradients", g, (sum(p[0] for p in passes) / SMOOTH_REPS,
                                sum(p[1] for p in passes) / SMOOTH_REPS))

    print(f"[non-square inputs {NH}x{NW}]")
    F = "nonsquare_model_a.npz"
    hw = x_ns.shape[1:3]
    g = rec_pair(F, "gradcam", cams.gradcam(exp_a, xnt, int_), "ke.methods.cams.gradcam(expose(model_a), x_nonsquare, indices_nonsquare)")
    chk("ns_gradcam", g, ref_gradcam(net_a, x_ns, idx_ns))
    g = rec_pair(F, "explain_gradcam_relu1", ke.gradcam(exp_a_r1, x_ns, idx_ns, **kw),
                 "ke.gradcam(expose(model_a,'relu1'), x_nonsquare, indices_nonsquare, batch_size=2)")
    r = ref_gradcam(net_a, x_ns, idx_ns, "relu1")
    chk("ns_explain_gradcam_relu1", g, (r[0], ref_postprocess(r[1], "positive_normalize", hw)))
    g = rec_pair(F, "explain_scorecam", ke.scorecam(exp_a, x_ns, idx_ns, **kw),
                 "ke.scorecam(expose(model_a), x_nonsquare, indices_nonsquare, batch_size=2)")
    r = ref_scorecam(net_a, x_ns, idx_ns)
    chk("ns_explain_scorecam", g, (r[0], ref_postprocess(r[1], "positive_normalize")))
    g = rec_pair(F, "explain_gradients", ke.gradients(model_a, x_ns, idx_ns, **kw),
                 "ke.gradients(model_a, x_nonsquare, indices_nonsquare, batch_size=2)")
    r = ref_gradients(net_a, x_ns, idx_ns)
    chk("ns_explain_gradients", g, (r[0], ref_postprocess(r[1], "normalize")))
    g = rec_pair(F, "tta_gradcam_relu1", meta.tta(cams.gradcam)(exp_a_r1, xnt, indices=int_),
                 "ke.methods.meta.tta(cams.gradcam)(expose(model_a,'relu1'), x_nonsquare, indices=indices_nonsquare)")
    rl, rm, _, _ = ref_tta(lambda xi: ref_gradcam(net_a, xi, idx_ns, "relu1"), x_ns)
    chk("ns_tta_gradcam_relu1", g, (rl, rm))

    print("[filters]")
    F = "filters.npz"
    fx = rng.normal(0, 2, args.filters_shape).astype(np.float32)
    fx[0, :, :, 1] = 0.7  # constant channel -> divide_no_nan gives 0
    fx[1, :, :, 2] = -np.abs(fx[1, :, :, 2])  # all-negative channel
    R.add(F, "x", fx, f"rng.normal(0,2,({','.join(map(str, fx.shape))})); x[0,:,:,1]=0.7; x[1,:,:,2]=-|x[1,:,:,2]|")
    for name in ("normalize", "positive", "negative", "positive_normalize",
                 "absolute_normalize", "negative_normalize"):
        got = getattr(ke.filters, name)(tf.constant(fx)).numpy()
        R.add(F, name, got, f"ke.filters.{name}(x)  # axis=(-3,-2)")
    ok &= R.check("filters.normalize", R.files[F]["normalize"], np_minmax(fx), 1e-6)
    ok &= R.check("filters.positive_normalize", R.files[F]["positive_normalize"], np_minmax(np.maximum(fx, 0)), 1e-6)
    ok &= R.check("filters.absolute_normalize", R.files[F]["absolute_normalize"], np_minmax(np.abs(fx)), 1e-6)
    ok &= R.check("filters.negative_is_maximum_bug", R.files[F]["negative"], np.maximum(fx, 0), 0)

    print("[tf.image.resize bilinear conventions]")
    F = "resize.npz"
    for name, shape, size in (
        ("up_8x8_to_32x32", (1, 8, 8, 2), (32, 32)),
        ("down_32x32_to_16x16", (1, 32, 32, 2), (16, 16)),
        ("up_32x32_to_48x48", (1, 32, 32, 2), (48, 48)),
        ("down_24x40_to_12x20", (1, 24, 40, 1), (12, 20)),
        ("mixed_5x7_to_3x11", (1, 5, 7, 1), (3, 11)),
    ):
        src = rng.normal(0, 1, shape).astype(np.float32)
        dst = tf.image.resize(src, size).numpy()
        R.add(F, name + ".src", src, "rng.normal")
        R.add(F, name + ".dst", dst, f"tf.image.resize(src, {size})  # bilinear, antialias=False")
        ok &= R.check("resize." + name, dst, np_resize_bilinear(src, size), 1e-5)
    flip = tf.image.flip_left_right(x[:1]).numpy()
    ok &= R.check("flip_left_right_is_axis2", flip, x[:1, :, ::-1], 0)

    R.manifest["all_checks_ok"] = bool(ok)
    R.save()
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in R.files)
    print(f"wrote {len(R.files)} npz files ({total / 1e6:.2f} MB) to {args.out}; all checks ok: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
