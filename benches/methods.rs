//! Every method on the two tiny models of the golden tests (keras-explainable's
//! `model_a`: conv(3→8) → ReLU → conv(8→16) → ReLU → GAP → dense(16→10), and
//! `model_b`, with BatchNorm after the first convolution), batch 8, 32×32,
//! against the forward pass. Weights are deterministic stand-ins, so the
//! bench needs no golden files. `cargo bench --bench methods`
//! (`BURN_EXPLAINABLE_BENCH_BACKEND` picks the backend); the device is
//! synchronised inside the timed region by reading the result back.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn_explainable::{
    Cam, Explainer, FullGrad, GradCam, GradCamPlusPlus, Probe, Saliency, ScoreCam, Smooth, Targets,
    Tta,
};
use common::{GoldenNet, GoldenTap, Lcg};

fn main() {
    divan::main();
}

const MODELS: [&str; 2] = ["model_a", "model_b"];

/// The golden architecture with weights from a fixed generator.
fn golden_shaped(with_bn: bool, device: &Device) -> GoldenNet {
    let mut r = Lcg(11);
    let mut conv = |i, o| {
        let mut c = Conv2dConfig::new([i, o], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        c.weight = Param::from_tensor(r.tensor([o, i, 3, 3], -0.3, 0.3, device));
        c.bias = Some(Param::from_tensor(r.tensor([o], -0.1, 0.1, device)));
        c
    };
    let (conv1, conv2) = (conv(3, 8), conv(8, 16));
    let bn1 = with_bn.then(|| {
        let mut bn = BatchNormConfig::new(8).with_epsilon(1e-3).init(device);
        bn.running_mean = RunningState::new(r.tensor([8], -0.2, 0.2, device));
        bn.running_var = RunningState::new(r.tensor([8], 0.5, 1.5, device));
        bn.gamma = Param::from_tensor(r.tensor([8], 0.5, 1.5, device));
        bn
    });
    let mut logits = LinearConfig::new(16, 10).init(device);
    logits.weight = Param::from_tensor(r.tensor([16, 10], -1.0, 1.0, device));
    GoldenNet {
        conv1,
        bn1,
        conv2,
        logits,
    }
}

/// The backend named by `BURN_EXPLAINABLE_BENCH_BACKEND` (default `flex`).
fn bench_device() -> Device {
    let backend = std::env::var("BURN_EXPLAINABLE_BENCH_BACKEND").unwrap_or_else(|_| "flex".into());
    burn_explainable::backends::device(&backend).expect("bench backend")
}

fn setup(model: &str) -> (Probe<GoldenNet, 4>, Tensor<4>) {
    let device = bench_device();
    let net = golden_shaped(model == "model_b", &device);
    let x = Lcg(5).tensor([8, 3, 32, 32], -1.0, 1.0, &device);
    (Probe::new(&net).at(GoldenTap::Relu2), x)
}

#[divan::bench(args = MODELS)]
fn forward(bencher: divan::Bencher, model: &str) {
    let (probe, x) = setup(model);
    bencher.bench_local(|| probe.forward(x.clone()).unwrap().flat().into_data());
}

fn run(bencher: divan::Bencher, model: &str, method: &dyn Explainer<GoldenNet, 4>) {
    let (probe, x) = setup(model);
    let targets = Targets::top_k(1);
    bencher.bench_local(|| {
        method
            .explain(&probe, x.clone(), &targets)
            .unwrap()
            .maps
            .into_data()
    });
}

#[divan::bench(args = MODELS)]
fn cam(b: divan::Bencher, model: &str) {
    run(b, model, &Cam::new());
}

#[divan::bench(args = MODELS)]
fn grad_cam(b: divan::Bencher, model: &str) {
    run(b, model, &GradCam::new());
}

#[divan::bench(args = MODELS)]
fn grad_cam_plus_plus(b: divan::Bencher, model: &str) {
    run(b, model, &GradCamPlusPlus::new());
}

#[divan::bench(args = MODELS)]
fn score_cam(b: divan::Bencher, model: &str) {
    run(b, model, &ScoreCam::new());
}

#[divan::bench(args = MODELS)]
fn gradients(b: divan::Bencher, model: &str) {
    run(b, model, &Saliency::new());
}

#[divan::bench(args = MODELS)]
fn full_grad(b: divan::Bencher, model: &str) {
    run(b, model, &FullGrad::new());
}

#[divan::bench(args = MODELS)]
fn smooth_gradients_4(b: divan::Bencher, model: &str) {
    run(b, model, &Smooth::new(Saliency::new()).with_repetitions(4));
}

#[divan::bench(args = MODELS)]
fn tta_grad_cam(b: divan::Bencher, model: &str) {
    run(b, model, &Tta::new(GradCam::new()));
}

/// The U-Net of `models::unet` (widths 16/32/64, 4 classes), batch 4,
/// 96×96, segmentation targets over whole images: the cost of a tap that is
/// not a cut (the bottleneck: one forward per unit) against the model's
/// forward and backward to the input, and a cut (`dec1`: one forward for
/// every unit).
mod unet {
    use super::*;
    use burn_explainable::models::unet::{UNet, UNetConfig, UNetTap};

    const UNITS: [usize; 2] = [1, 4];

    fn setup(units: usize) -> (Probe<UNet, 4>, Tensor<4>, Targets) {
        let device = bench_device();
        device.seed(3);
        let net = UNetConfig::new(3, 4).init(&device);
        let x = Lcg(5).tensor([4, 3, 96, 96], -1.0, 1.0, &device);
        let categories = (0..units as i64).map(|u| u % 4).collect::<Vec<_>>();
        let masks = Tensor::<3>::ones([units, 96, 96], &device);
        let targets = Targets::segmentation(TensorData::new(categories, [units]), masks);
        (Probe::new(&net), x, targets)
    }

    #[divan::bench]
    fn forward(bencher: divan::Bencher) {
        let (probe, x, _) = setup(1);
        bencher.bench_local(|| probe.forward(x.clone()).unwrap().flat().into_data());
    }

    #[divan::bench]
    fn backward_to_input(bencher: divan::Bencher) {
        let (probe, x, _) = setup(1);
        bencher.bench_local(|| {
            let x = x.clone().autodiff().require_grad();
            let out = probe.model().forward(x.clone());
            let grads = out.sum().backward();
            x.grad(&grads).unwrap().into_data()
        });
    }

    fn grad_cam(bencher: divan::Bencher, tap: UNetTap, units: usize) {
        let (probe, x, targets) = setup(units);
        let probe = probe.at(tap);
        bencher.bench_local(|| {
            GradCam::new()
                .explain(&probe, x.clone(), &targets)
                .unwrap()
                .maps
                .into_data()
        });
    }

    #[divan::bench(args = UNITS)]
    fn grad_cam_bottleneck(b: divan::Bencher, units: usize) {
        grad_cam(b, UNetTap::Bottleneck, units);
    }

    #[divan::bench(args = UNITS)]
    fn grad_cam_dec1(b: divan::Bencher, units: usize) {
        grad_cam(b, UNetTap::Dec1, units);
    }
}
