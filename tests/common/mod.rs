//! Shared test support: the test device, reference-array loading, the golden
//! models, and named tolerances.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn_explainable::{Explainable, Output, Trace, effective_bias};

/// The backend every test runs on: `BURN_EXPLAINABLE_TEST_BACKEND` = `flex`
/// (default), `tch`, `ndarray`, `wgpu` or `cuda` (each needs its Cargo feature).
pub fn device() -> Device {
    let name = backend_name();
    burn_explainable::backends::device(&name)
        .unwrap_or_else(|e| panic!("BURN_EXPLAINABLE_TEST_BACKEND={name}: {e}"))
}

/// The test backend's name (`BURN_EXPLAINABLE_TEST_BACKEND`, default `flex`).
pub fn backend_name() -> String {
    std::env::var("BURN_EXPLAINABLE_TEST_BACKEND").unwrap_or_else(|_| "flex".into())
}

/// Whether this backend's convolution backward pass is slow (ndarray and
/// wgpu on a CPU): the quality tests then skip their input-gradient methods,
/// which the golden and parity tests cover on every backend.
pub fn slow_backward() -> bool {
    !matches!(backend_name().as_str(), "flex" | "tch" | "cuda")
}

/// Whether the suites hold this backend to the references' own tolerances
/// everywhere: flex and tch (PyTorch's kernels). The others relax the few
/// comparisons their documentation names (a backward pass that sums in
/// another order on wgpu's lavapipe).
pub fn reference_tolerances() -> bool {
    matches!(backend_name().as_str(), "flex" | "tch")
}

fn dir_from(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default))
}

/// The golden folder: `BURN_EXPLAINABLE_GOLDEN`, by default `tests/data/golden`.
pub fn golden_dir() -> PathBuf {
    dir_from("BURN_EXPLAINABLE_GOLDEN", "tests/data/golden")
}

/// The fixtures folder: `BURN_EXPLAINABLE_FIXTURES`, by default `../shared/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    dir_from("BURN_EXPLAINABLE_FIXTURES", "../shared/fixtures")
}

/// One array of an `.npz` file.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub f32: Vec<f32>,
    pub i64: Vec<i64>,
}

/// Every array of an `.npz` file, by key.
pub struct Npz {
    pub name: String,
    arrays: HashMap<String, Array>,
}

impl Npz {
    pub fn open(path: PathBuf) -> Self {
        let mut archive = npyz::npz::NpzArchive::open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let names: Vec<String> = archive.array_names().map(String::from).collect();
        let mut arrays = HashMap::new();
        for name in names {
            let file = archive.by_name(&name).unwrap().unwrap();
            let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
            let descr = file.dtype().descr().trim_matches('\'').to_string();
            let (f32, i64) = match descr.as_str() {
                "<f4" => {
                    let v: Vec<f32> = file.into_vec().unwrap();
                    (v.clone(), v.iter().map(|&x| x as i64).collect())
                }
                "<f8" => {
                    let v: Vec<f64> = file.into_vec().unwrap();
                    (v.iter().map(|&x| x as f32).collect(), Vec::new())
                }
                "<i4" => {
                    let v: Vec<i32> = file.into_vec().unwrap();
                    (
                        v.iter().map(|&x| x as f32).collect(),
                        v.iter().map(|&x| x as i64).collect(),
                    )
                }
                "<i8" => {
                    let v: Vec<i64> = file.into_vec().unwrap();
                    (v.iter().map(|&x| x as f32).collect(), v)
                }
                other => panic!("{name}: unsupported dtype {other}"),
            };
            arrays.insert(name, Array { shape, f32, i64 });
        }
        Self {
            name: path.display().to_string(),
            arrays,
        }
    }

    pub fn golden(file: &str) -> Self {
        Self::open(golden_dir().join(file))
    }

    /// A file of the ResNet fixtures (`<fixtures>/resnet/<file>`).
    pub fn resnet_fixture(file: &str) -> Self {
        Self::open(fixtures_dir().join("resnet").join(file))
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.arrays.keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn has(&self, key: &str) -> bool {
        self.arrays.contains_key(key)
    }

    pub fn get(&self, key: &str) -> &Array {
        self.arrays
            .get(key)
            .unwrap_or_else(|| panic!("{}: no array {key}", self.name))
    }

    /// The array as a tensor of rank `D`, in its stored layout.
    pub fn tensor<const D: usize>(&self, key: &str, device: &Device) -> Tensor<D> {
        let a = self.get(key);
        assert_eq!(
            a.shape.len(),
            D,
            "{key}: rank {} expected {D}",
            a.shape.len()
        );
        let shape: [usize; D] = a.shape.clone().try_into().unwrap();
        Tensor::from_data(TensorData::new(a.f32.clone(), shape), device)
    }

    /// A channels-last array `[B, ...spatial, C]` moved to channels-first `[B, C, ...spatial]`.
    pub fn channels_first<const D: usize>(&self, key: &str, device: &Device) -> Tensor<D> {
        let t = self.tensor::<D>(key, device);
        let mut perm = [0usize; D];
        perm[1] = D - 1;
        for (i, p) in perm.iter_mut().enumerate().skip(2) {
            *p = i - 1;
        }
        t.permute(perm)
    }

    pub fn indices(&self, key: &str) -> burn_explainable::Targets {
        let a = self.get(key);
        burn_explainable::Targets::from_data(TensorData::new(a.i64.clone(), a.shape.clone()))
    }
}

/// Reads a tensor back as `(shape, values)`.
pub fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let data = t.into_data().convert::<f32>();
    let shape = data.shape().to_vec();
    (shape, data.try_into_vec::<f32>().unwrap())
}

/// A small deterministic generator for test weights.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (hi - lo) * ((self.0 >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn tensor<const D: usize>(
        &mut self,
        shape: [usize; D],
        lo: f32,
        hi: f32,
        device: &Device,
    ) -> Tensor<D> {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| self.uniform(lo, hi)).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }
}

/// Named tolerances, relative to the largest |value| of the expected array.
pub mod tol {
    /// Golden arrays from keras-explainable (the generator's own suggestion).
    pub const GOLDEN: f32 = 1e-4;
    /// Identities that hold exactly up to float32 rounding.
    pub const EXACT: f32 = 1e-5;
}

/// Asserts that a sample explained alone gives what it gives in a batch:
/// within `rel` on the backends that compute each sample the same way
/// whatever the batch (flex, wgpu). LibTorch (`tch`) picks its
/// convolution and matrix kernels by shape, so a sample rounds differently
/// alone and in a batch, by about 1e-7 of the values flowing through the
/// model. A difference of scores (Occlusion: measured 2.7e-5 of the
/// normalised map) or the small remainder of a sum that cancels (HiResCAM
/// at a random ViT's block output: maps of 3e-6 from terms near 0.1,
/// measured 6e-8 apart) magnifies that; so on tch: at least
/// [`tol::GOLDEN`], plus 1e-7 absolute. A sample mixed with another would
/// differ by the map's own size, far above either bound.
pub fn assert_batch_invariant<const D: usize>(
    what: &str,
    alone: Tensor<D>,
    batched: Tensor<D>,
    rel: f32,
) {
    let (rel, abs) = if backend_name() == "tch" {
        (rel.max(tol::GOLDEN), 1e-7)
    } else {
        (rel, 0.0)
    };
    assert_close_or_within(what, alone, batched, rel, abs);
}

/// Asserts `max |actual − expected| ≤ rel · max |expected|`, with identical shapes.
pub fn assert_close<const D: usize>(what: &str, actual: Tensor<D>, expected: Tensor<D>, rel: f32) {
    assert_close_or_within(what, actual, expected, rel, 0.0);
}

/// Asserts `max |actual − expected| ≤ rel · max |expected| + abs`, with
/// identical shapes.
fn assert_close_or_within<const D: usize>(
    what: &str,
    actual: Tensor<D>,
    expected: Tensor<D>,
    rel: f32,
    abs: f32,
) {
    let (sa, a) = values(actual);
    let (se, e) = values(expected);
    assert_eq!(sa, se, "{what}: shape");
    let scale = e
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let (mut worst, mut at) = (0f32, 0usize);
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        let d = (x - y).abs();
        if d.is_nan() || d > worst {
            worst = if d.is_nan() { f32::INFINITY } else { d };
            at = i;
        }
    }
    assert!(
        worst <= rel * scale + abs,
        "{what}: max |diff| {worst:e} at flat index {at} (got {}, expected {}) exceeds {rel:e} · {scale:e} + {abs:e}",
        a[at],
        e[at]
    );
}

/// The tap points of the golden models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoldenTap {
    Relu1,
    Relu2,
}

/// keras-explainable's `model_a` (and, with `bn1`, `model_b`):
/// conv1 → [bn1] → ReLU → conv2 → ReLU → GAP → dense.
#[derive(Module, Debug)]
pub struct GoldenNet {
    pub conv1: Conv2d,
    pub bn1: Option<BatchNorm>,
    pub conv2: Conv2d,
    pub logits: Linear,
}

impl GoldenNet {
    /// Builds the model from a golden weights file (`weights_model_a.npz`).
    pub fn load(file: &str, device: &Device) -> Self {
        let w = Npz::golden(file);
        let conv = |prefix: &str| {
            let weight = w.tensor::<4>(&format!("{prefix}.weight_oihw"), device);
            let [o, i, kh, kw] = weight.dims();
            let mut c = Conv2dConfig::new([i, o], [kh, kw])
                .with_padding(PaddingConfig2d::Explicit(kh / 2, kw / 2, kh / 2, kw / 2))
                .init(device);
            c.weight = Param::from_tensor(weight);
            c.bias = Some(Param::from_tensor(
                w.tensor::<1>(&format!("{prefix}.bias"), device),
            ));
            c
        };
        let kernel = w.tensor::<2>("logits.kernel", device);
        let [k, l] = kernel.dims();
        let mut logits = LinearConfig::new(k, l).init(device);
        logits.weight = Param::from_tensor(kernel);
        logits.bias = Some(Param::from_tensor(w.tensor::<1>("logits.bias", device)));
        let bn1 = w.has("bn1.gamma").then(|| {
            let gamma = w.tensor::<1>("bn1.gamma", device);
            let mut bn = BatchNormConfig::new(gamma.dims()[0])
                .with_epsilon(1e-3)
                .init(device);
            bn.gamma = Param::from_tensor(gamma);
            bn.beta = Param::from_tensor(w.tensor::<1>("bn1.beta", device));
            bn.running_mean = RunningState::new(w.tensor::<1>("bn1.moving_mean", device));
            bn.running_var = RunningState::new(w.tensor::<1>("bn1.moving_variance", device));
            bn
        });
        Self {
            conv1: conv("conv1"),
            bn1,
            conv2: conv("conv2"),
            logits,
        }
    }

    pub fn model_a(device: &Device) -> Self {
        Self::load("weights_model_a.npz", device)
    }

    pub fn model_b(device: &Device) -> Self {
        Self::load("weights_model_b.npz", device)
    }

    fn conv_bias(c: &Conv2d) -> Tensor<1> {
        c.bias.as_ref().expect("golden convs have biases").val()
    }
}

impl Explainable<4> for GoldenNet {
    type Tap = GoldenTap;

    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<GoldenTap, 4>) -> Output {
        let z = trace.bias(self.conv1.forward(x), || Self::conv_bias(&self.conv1));
        let z = match &self.bn1 {
            Some(bn) => trace.bias(bn.forward(z), || effective_bias(bn, None)),
            None => z,
        };
        let a1 = trace.relu(z);
        let a1 = trace.tap(GoldenTap::Relu1, a1);
        let z2 = trace.bias(self.conv2.forward(a1), || Self::conv_bias(&self.conv2));
        let a2 = trace.relu(z2);
        let a2 = trace.tap(GoldenTap::Relu2, a2);
        self.logits
            .forward(a2.mean_dims(&[2, 3]).flatten::<2>(1, 3))
            .into()
    }

    fn is_cut(&self, _: GoldenTap) -> bool {
        true
    }

    fn cam_weights(&self, tap: GoldenTap) -> Option<Tensor<2>> {
        (tap == GoldenTap::Relu2).then(|| self.logits.weight.val())
    }
}

/// Compares an explanation with a golden pair `<key>.logits` `[B, N]` and
/// `<key>.maps` (channels last), both multiplied by `factor`.
pub fn check_golden(
    npz: &Npz,
    key: &str,
    e: &burn_explainable::Explanation<4>,
    factor: f32,
    device: &Device,
) {
    let what = format!("{}:{key}", npz.name);
    let scores = npz
        .tensor::<2>(&format!("{key}.logits"), device)
        .mul_scalar(factor);
    assert_close(
        &format!("{what}.logits"),
        e.scores.clone(),
        scores,
        tol::GOLDEN,
    );
    let maps = npz
        .channels_first::<4>(&format!("{key}.maps"), device)
        .mul_scalar(factor);
    assert_close(&format!("{what}.maps"), e.maps.clone(), maps, tol::GOLDEN);
}

/// pytorch-grad-cam's `scale_cam_image` pipeline on raw maps `[B, N, h, w]`:
/// ReLU, per-map `(v − min) / (1e-7 + max)`, bilinear resize (half-pixel),
/// then the same normalisation again.
pub fn pgc_postprocess(raw: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    fn scale(m: Tensor<4>) -> Tensor<4> {
        let m = m.clone() - m.min_dims(&[2, 3]);
        m.clone() / m.max_dims(&[2, 3]).add_scalar(1e-7)
    }
    let m = scale(raw.clamp_min(0.0));
    scale(burn_explainable::resize::resize(m, &size).unwrap())
}

/// Input gradients cross every ReLU gate and max-pool choice: a gate that
/// flips between two float32 implementations changes one compact patch by
/// ~1e-3 relative (fixtures README). So: 99.9% of the elements within
/// relative 1e-4 and all within 5e-3.
pub fn assert_gradients_close(what: &str, actual: Tensor<5>, expected: Tensor<5>) {
    let (sa, a) = values(actual);
    let (se, e) = values(expected);
    assert_eq!(sa, se, "{what}: shape");
    let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diffs: Vec<f32> = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs() / scale)
        .collect();
    let worst = diffs.iter().fold(0f32, |m, &d| {
        m.max(if d.is_nan() { f32::INFINITY } else { d })
    });
    let close = diffs.iter().filter(|&&d| d <= 1e-4).count() as f64 / diffs.len() as f64;
    assert!(worst <= 5e-3, "{what}: worst relative difference {worst:e}");
    assert!(
        close >= 0.999,
        "{what}: only {:.3}% within 1e-4",
        100.0 * close
    );
}
