//! CAM, Grad-CAM and Grad-CAM++ against keras-explainable's own output
//! (`BURN_EXPLAINABLE_GOLDEN`, shapes from the files).

mod common;

use burn::prelude::*;
use burn_explainable::{
    Cam, Explainer, Explanation, GradCam, GradCamPlusPlus, Pipeline, Probe, Targets,
};
use common::{GoldenNet, GoldenTap, Npz, assert_close, device, tol};

fn check(npz: &Npz, key: &str, e: &Explanation<4>, device: &Device) {
    common::check_golden(npz, key, e, 1.0, device);
}

/// keras-explainable's raw Grad-CAM++ maps carry a factor `exp(score)` per
/// (sample, unit), which we drop (SPEC part A): divide the golden maps by it.
fn check_without_exp(npz: &Npz, key: &str, e: &Explanation<4>, device: &Device) {
    let scores = npz.tensor::<2>(&format!("{key}.logits"), device);
    let [b, n] = scores.dims();
    let factor = scores.exp().reshape([b, n, 1, 1]);
    let expected = npz.channels_first::<4>(&format!("{key}.maps"), device) / factor;
    assert_close(
        &format!("{key}.maps / exp(score)"),
        e.maps.clone(),
        expected,
        tol::GOLDEN,
    );
    assert_close(
        &format!("{key}.logits"),
        e.scores.clone(),
        npz.tensor::<2>(&format!("{key}.logits"), device),
        tol::GOLDEN,
    );
}

struct Case {
    device: Device,
    inputs: Npz,
}

impl Case {
    fn new() -> Self {
        Self {
            device: device(),
            inputs: Npz::golden("inputs.npz"),
        }
    }
    fn x(&self) -> Tensor<4> {
        self.inputs.channels_first("x", &self.device)
    }
    fn targets(&self) -> Targets {
        self.inputs.indices("indices")
    }
}

#[test]
fn forward_matches_intermediates() {
    let c = Case::new();
    for (weights, file) in [
        ("weights_model_a.npz", "intermediates_model_a.npz"),
        ("weights_model_b.npz", "intermediates_model_b.npz"),
    ] {
        let model = GoldenNet::load(weights, &c.device);
        let probe = Probe::new(&model).at(GoldenTap::Relu1);
        let golden = Npz::golden(file);
        let (logits, relu1) = probe.activations(c.x()).unwrap();
        assert_close(
            file,
            logits.flat(),
            golden.tensor("logits_all", &c.device),
            tol::GOLDEN,
        );
        assert_close(
            file,
            relu1,
            golden.channels_first("relu1", &c.device),
            tol::GOLDEN,
        );
    }
}

#[test]
fn raw_cams_model_a() {
    let c = Case::new();
    let model = GoldenNet::model_a(&c.device);
    let probe = Probe::new(&model).at(GoldenTap::Relu2);
    let g = Npz::golden("cams_model_a.npz");
    let t = c.targets();
    check(
        &g,
        "cam",
        &Cam::new().explain(&probe, c.x(), &t).unwrap(),
        &c.device,
    );
    check(
        &g,
        "cam_all",
        &Cam::new().explain(&probe, c.x(), &Targets::all()).unwrap(),
        &c.device,
    );
    check(
        &g,
        "gradcam",
        &GradCam::new().explain(&probe, c.x(), &t).unwrap(),
        &c.device,
    );
    let pp = GradCamPlusPlus::new().explain(&probe, c.x(), &t).unwrap();
    check_without_exp(&g, "gradcampp", &pp, &c.device);
}

#[test]
fn raw_cams_model_a_relu1() {
    let c = Case::new();
    let model = GoldenNet::model_a(&c.device);
    let probe = Probe::new(&model).at(GoldenTap::Relu1);
    let g = Npz::golden("cams_model_a_relu1.npz");
    let t = c.targets();
    check(
        &g,
        "gradcam",
        &GradCam::new().explain(&probe, c.x(), &t).unwrap(),
        &c.device,
    );
    let all = GradCam::new()
        .explain(&probe, c.x(), &Targets::all())
        .unwrap();
    check(&g, "gradcam_all", &all, &c.device);
    // Fewer units per pass than units: the result must not change.
    let chunked = GradCam::new()
        .with_units_per_pass(3)
        .explain(&probe, c.x(), &Targets::all())
        .unwrap();
    check(&g, "gradcam_all", &chunked, &c.device);
    let pp = GradCamPlusPlus::new().explain(&probe, c.x(), &t).unwrap();
    check_without_exp(&g, "gradcampp", &pp, &c.device);
}

#[test]
fn raw_cams_model_b() {
    let c = Case::new();
    let model = GoldenNet::model_b(&c.device);
    let probe = Probe::new(&model).at(GoldenTap::Relu2);
    let g = Npz::golden("model_b.npz");
    let t = c.targets();
    check(
        &g,
        "cam",
        &Cam::new().explain(&probe, c.x(), &t).unwrap(),
        &c.device,
    );
    check(
        &g,
        "gradcam",
        &GradCam::new().explain(&probe, c.x(), &t).unwrap(),
        &c.device,
    );
}

#[test]
fn explain_shortcuts_model_a() {
    let c = Case::new();
    let model = GoldenNet::model_a(&c.device);
    let g = Npz::golden("explain_model_a.npz");
    let t = c.targets();
    let at = |tap| Probe::new(&model).at(tap);
    let run = |e: &dyn Explainer<GoldenNet, 4>, tap| {
        Pipeline::new(e)
            .with_batch_size(2)
            .run(&at(tap), c.x(), &t)
            .unwrap()
    };
    check(&g, "cam", &run(&Cam::new(), GoldenTap::Relu2), &c.device);
    check(
        &g,
        "gradcam",
        &run(&GradCam::new(), GoldenTap::Relu2),
        &c.device,
    );
    check(
        &g,
        "gradcampp",
        &run(&GradCamPlusPlus::new(), GoldenTap::Relu2),
        &c.device,
    );
    check(
        &g,
        "gradcam_relu1",
        &run(&GradCam::new(), GoldenTap::Relu1),
        &c.device,
    );
    check(
        &g,
        "gradcampp_relu1",
        &run(&GradCamPlusPlus::new(), GoldenTap::Relu1),
        &c.device,
    );
    let nopost = Pipeline::new(GradCam::new())
        .with_batch_size(2)
        .with_filter(None)
        .run(&at(GoldenTap::Relu2), c.x(), &t)
        .unwrap();
    check(&g, "explain_gradcam_nopost", &nopost, &c.device);
}

#[test]
fn nonsquare_model_a() {
    let c = Case::new();
    let model = GoldenNet::model_a(&c.device);
    let g = Npz::golden("nonsquare_model_a.npz");
    let x: Tensor<4> = c.inputs.channels_first("x_nonsquare", &c.device);
    let t = c.inputs.indices("indices_nonsquare");
    let raw = GradCam::new()
        .explain(&Probe::new(&model).at(GoldenTap::Relu2), x.clone(), &t)
        .unwrap();
    check(&g, "gradcam", &raw, &c.device);
    let e = Pipeline::new(GradCam::new())
        .run(&Probe::new(&model).at(GoldenTap::Relu1), x, &t)
        .unwrap();
    check(&g, "explain_gradcam_relu1", &e, &c.device);
}
