//! smooth and tta against keras-explainable's own output
//! (`BURN_EXPLAINABLE_GOLDEN`, shapes from the files), with tta's divisor fixed.

mod common;

use burn::prelude::*;
use burn_explainable::{
    Cam, Explainer, Explanation, Filter, GradCam, Noise, Pipeline, Probe, Saliency, Smooth,
    Targets, Tta,
};
use common::{GoldenNet, GoldenTap, Npz, assert_close, device, tol};

fn check(npz: &Npz, key: &str, e: &Explanation<4>, factor: f32, device: &Device) {
    common::check_golden(npz, key, e, factor, device);
}

/// keras-explainable divides tta sums by `scales · (1 + flip)` although it
/// runs `(scales + 1) · (1 + flip)` passes (SPEC part A): the factor that
/// turns its numbers into the true mean.
fn tta_correction(scales: usize) -> f32 {
    scales as f32 / (scales + 1) as f32
}

fn inputs(device: &Device) -> (Tensor<4>, Targets, Npz) {
    let npz = Npz::golden("inputs.npz");
    (npz.channels_first("x", device), npz.indices("indices"), npz)
}

#[test]
fn smooth_gradients_with_replayed_noise() {
    let device = device();
    let (x, t, _) = inputs(&device);
    let g = Npz::golden("smooth_model_a.npz");
    // noise: [R − 1, B, H, W, C], channels last.
    let noise: Tensor<5> = g.tensor("noise", &device);
    let noisy = noise.dims()[0];
    let noise = noise.permute([0, 1, 4, 2, 3]);
    let draws: Vec<TensorData> = (0..noisy)
        .map(|r| {
            noise
                .clone()
                .narrow(0, r, 1)
                .squeeze_dim::<4>(0)
                .into_data()
        })
        .collect();
    let model = GoldenNet::model_a(&device);
    for copies in [1, 2] {
        let smooth = Smooth::new(Saliency::new())
            .with_repetitions(noisy + 1)
            .with_noise(Noise::Given(draws.clone()))
            .with_copies_per_pass(copies);
        let e = smooth.explain(&Probe::new(&model), x.clone(), &t).unwrap();
        check(&g, "smooth_gradients", &e, 1.0, &device);
    }
}

#[test]
fn tta_default_scales_with_fixed_divisor() {
    let device = device();
    let (x, t, _) = inputs(&device);
    let g = Npz::golden("tta_model_a.npz");
    let model = GoldenNet::model_a(&device);
    let relu2 = Probe::new(&model).at(GoldenTap::Relu2);
    let relu1 = Probe::new(&model).at(GoldenTap::Relu1);
    let tta = |e| Tta::new(e); // keras-explainable's defaults: scales 0.5, 1.5, 2; flips
    let k = tta_correction(Tta::new(()).scales.len());
    check(
        &g,
        "tta_cam",
        &tta(Box::new(Cam::new()) as Box<dyn Explainer<_, 4>>)
            .explain(&relu2, x.clone(), &t)
            .unwrap(),
        k,
        &device,
    );
    check(
        &g,
        "tta_gradcam",
        &tta(Box::new(GradCam::new()))
            .explain(&relu2, x.clone(), &t)
            .unwrap(),
        k,
        &device,
    );
    check(
        &g,
        "tta_gradcam_relu1",
        &tta(Box::new(GradCam::new()))
            .explain(&relu1, x.clone(), &t)
            .unwrap(),
        k,
        &device,
    );
    check(
        &g,
        "tta_gradients",
        &tta(Box::new(Saliency::new()))
            .explain(&relu2, x.clone(), &t)
            .unwrap(),
        k,
        &device,
    );

    let one = Tta::new(GradCam::new())
        .with_scales(vec![1.5])
        .with_flip(false);
    let e = one.explain(&relu2, x.clone(), &t).unwrap();
    check(
        &g,
        "tta_gradcam_s1.5_noflip",
        &e,
        tta_correction(1),
        &device,
    );

    let e = Pipeline::new(Tta::new(GradCam::new()))
        .with_filter(Some(Filter::PositiveNormalize))
        .with_batch_size(2)
        .run(&relu2, x, &t)
        .unwrap();
    // Normalised maps are unaffected by the divisor; the scores are not.
    let scores = g
        .tensor::<2>("explain_tta_gradcam.logits", &device)
        .mul_scalar(k);
    assert_close("explain_tta_gradcam.logits", e.scores, scores, tol::GOLDEN);
    let maps = g.channels_first::<4>("explain_tta_gradcam.maps", &device);
    assert_close("explain_tta_gradcam.maps", e.maps, maps, tol::GOLDEN);
}

#[test]
fn tta_nonsquare() {
    let device = device();
    let (_, _, inputs) = inputs(&device);
    let x: Tensor<4> = inputs.channels_first("x_nonsquare", &device);
    let t = inputs.indices("indices_nonsquare");
    let model = GoldenNet::model_a(&device);
    let probe = Probe::new(&model).at(GoldenTap::Relu1);
    let tta = Tta::new(GradCam::new());
    let e = tta.explain(&probe, x, &t).unwrap();
    let g = Npz::golden("nonsquare_model_a.npz");
    check(
        &g,
        "tta_gradcam_relu1",
        &e,
        tta_correction(tta.scales.len()),
        &device,
    );
}
