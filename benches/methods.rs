//! Every method on the small test model, against its forward-pass baseline.
//! `cargo bench --bench methods`; the device is synchronised inside the
//! timed region by reading the result back.

use burn::prelude::*;
use burn_explainable::testing::TinyNet;
use burn_explainable::{
    Cam, Explainer, FullGrad, GradCam, GradCamPlusPlus, Gradients, Probe, ScoreCam, Smooth,
    Targets, Tta,
};

fn main() {
    divan::main();
}

fn setup() -> (Probe<TinyNet, 4>, Tensor<4>) {
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let x = Tensor::<4>::ones([8, 3, 32, 32], &device);
    (Probe::new(&model).at(TinyNet::FEATURES), x)
}

#[divan::bench]
fn forward(bencher: divan::Bencher) {
    let (probe, x) = setup();
    bencher.bench_local(|| probe.forward(x.clone()).unwrap().into_data());
}

fn run(bencher: divan::Bencher, method: &dyn Explainer<TinyNet, 4>) {
    let (probe, x) = setup();
    let targets = Targets::top_k(1);
    bencher.bench_local(|| {
        method
            .explain(&probe, x.clone(), &targets)
            .unwrap()
            .maps
            .into_data()
    });
}

#[divan::bench]
fn cam(b: divan::Bencher) {
    run(b, &Cam::new());
}

#[divan::bench]
fn grad_cam(b: divan::Bencher) {
    run(b, &GradCam::new());
}

#[divan::bench]
fn grad_cam_plus_plus(b: divan::Bencher) {
    run(b, &GradCamPlusPlus::new());
}

#[divan::bench]
fn score_cam(b: divan::Bencher) {
    run(b, &ScoreCam::new());
}

#[divan::bench]
fn gradients(b: divan::Bencher) {
    run(b, &Gradients::new());
}

#[divan::bench]
fn full_grad(b: divan::Bencher) {
    run(b, &FullGrad::new());
}

#[divan::bench]
fn smooth_gradients_4(b: divan::Bencher) {
    run(b, &Smooth::new(Gradients::new()).with_repetitions(4));
}

#[divan::bench]
fn tta_grad_cam(b: divan::Bencher) {
    run(b, &Tta::new(GradCam::new()));
}
