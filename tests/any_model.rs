//! Any model, any output: a U-Net explained at its bottleneck, a tap that is
//! not a cut (the encoder features bypass it), gives for every method and
//! combinator, several samples and several units per sample, exactly what
//! a loop over one sample and one unit at a time gives; and every bad
//! target or input is an error with context, never a panic.

mod common;

use burn::prelude::*;
use burn_explainable::combinators::Layers;
use burn_explainable::models::unet::{UNet, UNetConfig, UNetTap};
use burn_explainable::{
    Cam, Error, Explainable, Explainer, FullGrad, GradCam, GradCamPlusPlus, Noise, Output,
    Pipeline, Probe, Saliency, ScoreCam, Smooth, Targets, Trace, Tta,
};
use common::{Lcg, assert_batch_invariant, assert_close, device, tol, values};

const B: usize = 3;
const N: usize = 2;
const SIZE: usize = 16;
const CLASSES: usize = 3;

struct Case {
    x: Tensor<4>,
    categories: Vec<i64>,
    masks: Tensor<4>,
}

impl Case {
    fn new(device: &Device) -> Self {
        let mut r = Lcg(17);
        let x = r.tensor([B, 3, SIZE, SIZE], -1.0, 1.0, device);
        let categories = (0..B * N).map(|i| ((i * 2 + 1) % CLASSES) as i64).collect();
        // Weighted masks: positive everywhere, so every pixel matters.
        let masks = r.tensor([B, N, SIZE, SIZE], 0.0, 1.0, device);
        Self {
            x,
            categories,
            masks,
        }
    }

    fn targets(&self) -> Targets {
        Targets::segmentation(
            TensorData::new(self.categories.clone(), [B, N]),
            self.masks.clone(),
        )
    }

    /// The target of sample `b`, unit `n` alone.
    fn one(&self, b: usize, n: usize) -> Targets {
        Targets::segmentation(
            TensorData::new(vec![self.categories[b * N + n]], [1, 1]),
            self.masks.clone().narrow(0, b, 1).narrow(1, n, 1),
        )
    }
}

fn unet(device: &Device) -> UNet {
    UNetConfig::new(3, CLASSES)
        .with_widths([4, 6, 8])
        .init(device)
}

/// `explainer` on the whole batch equals it on every (sample, unit) alone.
fn equals_loop<E: Explainer<UNet, 4>>(name: &str, explainer: &E, probe: &Probe<UNet, 4>, c: &Case) {
    let all = explainer.explain(probe, c.x.clone(), &c.targets()).unwrap();
    let dims = all.maps.dims();
    assert_eq!(dims[..2], [B, N], "{name}: maps [B, N, ...]");
    for b in 0..B {
        for n in 0..N {
            let one = explainer
                .explain(probe, c.x.clone().narrow(0, b, 1), &c.one(b, n))
                .unwrap();
            let what = format!("{name}: sample {b}, unit {n}");
            assert_close(
                &what,
                all.maps.clone().narrow(0, b, 1).narrow(1, n, 1),
                one.maps,
                tol::GOLDEN,
            );
            assert_close(
                &format!("{what} score"),
                all.scores.clone().narrow(0, b, 1).narrow(1, n, 1),
                one.scores,
                tol::GOLDEN,
            );
        }
    }
}

#[test]
fn every_method_at_a_tap_that_is_not_a_cut_equals_a_loop() {
    let device = device();
    let model = unet(&device);
    let c = Case::new(&device);
    let probe = Probe::new(&model).at(UNetTap::Bottleneck);
    assert!(!model.is_cut(UNetTap::Bottleneck));
    equals_loop("Grad-CAM", &GradCam::new(), &probe, &c);
    equals_loop(
        "Grad-CAM++",
        &GradCamPlusPlus::new().with_epsilon(1e-6),
        &probe,
        &c,
    );
    equals_loop("Score-CAM", &ScoreCam::new().with_batch_size(5), &probe, &c);
    equals_loop("saliency", &Saliency::new(), &probe, &c);
    equals_loop("FullGrad", &FullGrad::new(), &probe, &c);
    equals_loop(
        "FullGrad (pytorch-grad-cam)",
        &FullGrad::pytorch_grad_cam(),
        &probe,
        &c,
    );
    equals_loop(
        "tta(Grad-CAM)",
        &Tta::new(GradCam::new()).with_scales(vec![0.5, 1.5]),
        &probe,
        &c,
    );
    equals_loop(
        "layers(Grad-CAM)",
        &Layers::new(
            GradCam::new(),
            vec![UNetTap::Bottleneck, UNetTap::Dec2, UNetTap::Dec1],
        ),
        &probe,
        &c,
    );
    equals_loop(
        "driver(Grad-CAM)",
        &Pipeline::new(GradCam::new()).with_batch_size(2),
        &probe,
        &c,
    );
    // SmoothGrad with the same noise per sample in both runs.
    let mut r = Lcg(5);
    let noise: Vec<Tensor<4>> = (0..2)
        .map(|_| r.tensor([B, 3, SIZE, SIZE], -0.2, 0.2, &device))
        .collect();
    let smooth = |rows: std::ops::Range<usize>| {
        let given = noise
            .iter()
            .map(|t| t.clone().narrow(0, rows.start, rows.len()).into_data())
            .collect();
        Smooth::new(GradCam::new())
            .with_repetitions(3)
            .with_noise(Noise::Given(given))
    };
    let all = smooth(0..B)
        .explain(&probe, c.x.clone(), &c.targets())
        .unwrap();
    for b in 0..B {
        for n in 0..N {
            let one = smooth(b..b + 1)
                .explain(&probe, c.x.clone().narrow(0, b, 1), &c.one(b, n))
                .unwrap();
            assert_close(
                &format!("smooth(Grad-CAM): sample {b}, unit {n}"),
                all.maps.clone().narrow(0, b, 1).narrow(1, n, 1),
                one.maps,
                tol::GOLDEN,
            );
        }
    }
    // CAM does not apply: no pooling head follows the bottleneck.
    assert!(matches!(
        Cam::new().explain(&probe, c.x.clone(), &c.targets()),
        Err(Error::InvalidTargets { .. } | Error::NoCamWeights { .. })
    ));
}

#[test]
fn the_cut_tap_replicates_and_agrees_with_one_unit_per_pass() {
    let device = device();
    let model = unet(&device);
    let c = Case::new(&device);
    let probe = Probe::new(&model).at(UNetTap::Dec1);
    assert!(model.is_cut(UNetTap::Dec1));
    equals_loop("Grad-CAM at a cut", &GradCam::new(), &probe, &c);
    let one_per_pass = GradCam::new()
        .with_units_per_pass(1)
        .explain(&probe, c.x.clone(), &c.targets())
        .unwrap();
    let replicated = GradCam::new()
        .explain(&probe, c.x.clone(), &c.targets())
        .unwrap();
    assert_close(
        "cut: replicated vs one unit per pass",
        replicated.maps,
        one_per_pass.maps,
        tol::EXACT,
    );
}

/// The U-Net without its input check: a bad input reaches its layers.
#[derive(Module, Debug)]
struct Unchecked {
    net: UNet,
}

impl Explainable<4> for Unchecked {
    type Tap = UNetTap;
    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<UNetTap, 4>) -> Output {
        self.net.forward_traced(x, trace)
    }
}

fn err<T: std::fmt::Debug>(r: burn_explainable::Result<T>) -> Error {
    r.expect_err("an error")
}

#[test]
fn bad_inputs_and_targets_are_errors_with_context() {
    let device = device();
    let c = Case::new(&device);
    let probe = Probe::new(&Unchecked { net: unet(&device) }).at(UNetTap::Bottleneck);
    let targets = c.targets();

    // A model that cannot take the input: an error naming the input's shape.
    for x in [
        Tensor::<4>::ones([B, 2, SIZE, SIZE], &device),
        Tensor::<4>::ones([B, 3, SIZE + 2, SIZE], &device),
    ] {
        let shape = x.dims().to_vec();
        for e in [
            err(GradCam::new().explain(&probe, x.clone(), &targets)),
            err(Saliency::new().explain(&probe, x.clone(), &targets)),
            err(ScoreCam::new().explain(&probe, x.clone(), &targets)),
        ] {
            match e {
                Error::ModelPanicked { shape: s, .. } => assert_eq!(s, shape),
                other => panic!("expected ModelPanicked for {shape:?}, got {other:?}"),
            }
        }
    }
    // The driver names the caller's input, not a chunk of it.
    let checked = Probe::new(&unet(&device)).at(UNetTap::Bottleneck);
    let x = Tensor::<4>::ones([B, 3, SIZE + 2, SIZE], &device);
    match err(Pipeline::new(GradCam::new())
        .with_batch_size(2)
        .run(&checked, x, &targets))
    {
        Error::InputRejected { shape, .. } => assert_eq!(shape, vec![B, 3, SIZE + 2, SIZE]),
        other => panic!("expected InputRejected, got {other:?}"),
    }

    let x = c.x.clone();
    let cats = |v: Vec<i64>| TensorData::new(v, [B, N]);
    // Masks of another spatial size than the output.
    let small = Targets::segmentation(cats(c.categories.clone()), c.masks.clone().narrow(2, 0, 8));
    assert!(matches!(
        err(GradCam::new().explain(&probe, x.clone(), &small)),
        Error::Shape { .. }
    ));
    // Masks of too low a rank.
    let flat = Targets::segmentation(
        cats(c.categories.clone()),
        Tensor::<2>::ones([B, N], &device),
    );
    assert!(matches!(
        err(GradCam::new().explain(&probe, x.clone(), &flat)),
        Error::InvalidTargets { .. }
    ));
    // Masks for another number of units than the categories.
    let three = Targets::segmentation(
        cats(c.categories.clone()),
        Tensor::<4>::ones([B, 3, SIZE, SIZE], &device),
    );
    assert!(matches!(
        err(GradCam::new().explain(&probe, x.clone(), &three)),
        Error::Shape { .. }
    ));
    // A category the model does not output.
    let mut bad = c.categories.clone();
    bad[3] = CLASSES as i64;
    let out = Targets::segmentation(cats(bad), c.masks.clone());
    match err(Saliency::new().explain(&probe, x.clone(), &out)) {
        Error::TargetOutOfRange {
            sample,
            column,
            index,
            units,
        } => {
            assert_eq!(
                (sample, column, index, units),
                (1, 1, CLASSES as i64, CLASSES)
            )
        }
        other => panic!("expected TargetOutOfRange, got {other:?}"),
    }
    // A unit index past the flattened output.
    let units = (CLASSES * SIZE * SIZE) as i64;
    assert!(matches!(
        err(GradCam::new().explain(&probe, x.clone(), &Targets::each([units]))),
        Error::TargetOutOfRange { index, .. } if index == units
    ));
    // A concept whose length is not the output's.
    let concept = Targets::similarity(Tensor::<2>::ones([1, 7], &device));
    assert!(matches!(
        err(GradCam::new().explain(&probe, x.clone(), &concept)),
        Error::Shape { .. }
    ));
    // A score function returning the wrong shape.
    let wrong = Targets::custom(1, |input| {
        Ok(input
            .output
            .flat()
            .narrow(1, 0, 2)
            .reshape([input.samples.len() * 2]))
    });
    assert!(matches!(
        err(GradCam::new().explain(&probe, x.clone(), &wrong)),
        Error::Shape { .. }
    ));
    // Ragged rows and softmax on segmentation targets.
    assert!(matches!(
        err(GradCam::new().explain(
            &probe,
            x.clone(),
            &Targets::from_rows(&[vec![0, 1], vec![2], vec![1, 1]])
        )),
        Error::InvalidTargets { .. }
    ));
    assert!(matches!(
        err(GradCam::new().explain(&probe, x, &c.targets().softmax())),
        Error::InvalidTargets { .. }
    ));
}

#[test]
fn a_custom_score_equals_the_built_in_one() {
    let device = device();
    let model = unet(&device);
    let c = Case::new(&device);
    let probe = Probe::new(&model).at(UNetTap::Bottleneck);
    // The segmentation score written by hand: class map times mask, summed.
    let (categories, masks) = (c.categories.clone(), c.masks.clone());
    let custom = Targets::custom(N, move |input| {
        let out: Tensor<4> = input.output.tensor()?;
        let rows = input.samples.len();
        let parts: Vec<Tensor<1>> = input
            .samples
            .iter()
            .enumerate()
            .map(|(r, &b)| {
                let class = categories[b * N + input.unit] as usize;
                let map = out.clone().narrow(0, r, 1).narrow(1, class, 1);
                let mask = masks.clone().narrow(0, b, 1).narrow(1, input.unit, 1);
                (map * mask).sum().reshape([1])
            })
            .collect();
        let scores = Tensor::cat(parts, 0);
        assert_eq!(scores.dims(), [rows]);
        Ok(scores)
    });
    for (name, built_in, hand) in [
        (
            "Grad-CAM",
            GradCam::new()
                .explain(&probe, c.x.clone(), &c.targets())
                .unwrap(),
            GradCam::new()
                .explain(&probe, c.x.clone(), &custom)
                .unwrap(),
        ),
        (
            "saliency",
            Saliency::new()
                .explain(&probe, c.x.clone(), &c.targets())
                .unwrap(),
            Saliency::new()
                .explain(&probe, c.x.clone(), &custom)
                .unwrap(),
        ),
        (
            "Score-CAM",
            ScoreCam::new()
                .explain(&probe, c.x.clone(), &c.targets())
                .unwrap(),
            ScoreCam::new()
                .explain(&probe, c.x.clone(), &custom)
                .unwrap(),
        ),
    ] {
        assert_close(
            &format!("{name} maps"),
            hand.maps,
            built_in.maps,
            tol::GOLDEN,
        );
        assert_close(
            &format!("{name} scores"),
            hand.scores,
            built_in.scores,
            tol::GOLDEN,
        );
    }
    // Negated targets negate Grad-CAM's maps exactly.
    let plus = GradCam::new()
        .explain(&probe, c.x.clone(), &c.targets())
        .unwrap();
    let minus = GradCam::new()
        .explain(&probe, c.x.clone(), &c.targets().negated())
        .unwrap();
    assert_close("negated", minus.maps.neg(), plus.maps, tol::EXACT);
    let (_, s) = values(minus.scores + plus.scores);
    assert!(s.iter().all(|v| v.abs() < 1e-3), "negated scores: {s:?}");
}

#[test]
fn layers_average_pytorch_grad_cam_maps() {
    let device = device();
    let model = unet(&device);
    let c = Case::new(&device);
    let probe = Probe::new(&model);
    let targets = c.targets();
    let size = [SIZE, SIZE];
    // One tap: exactly pytorch-grad-cam's single-layer output.
    let one = Layers::new(GradCam::new(), vec![UNetTap::Bottleneck])
        .explain(&probe, c.x.clone(), &targets)
        .unwrap();
    let single = Pipeline::pytorch_grad_cam(GradCam::new())
        .run(
            &probe.clone().at(UNetTap::Bottleneck),
            c.x.clone(),
            &targets,
        )
        .unwrap();
    assert_close("one layer", one.maps, single.maps, tol::EXACT);
    // Several taps: each raw map rectified, scaled and resized, then the
    // mean rectified and scaled (pytorch-grad-cam's aggregate_multi_layers).
    let taps = vec![UNetTap::Bottleneck, UNetTap::Dec2, UNetTap::Dec1];
    let (all, per_layer) = Layers::new(GradCam::new(), taps.clone())
        .run_layers(&probe, c.x.clone(), &targets)
        .unwrap();
    let mut sum: Option<Tensor<4>> = None;
    for (tap, layer) in taps.iter().zip(per_layer) {
        let raw = GradCam::new()
            .explain(&probe.clone().at(*tap), c.x.clone(), &targets)
            .unwrap()
            .maps;
        let expected = burn_explainable::resize::resize(
            burn_explainable::filters::scale(raw.clamp_min(0.0)),
            &size,
        )
        .unwrap();
        assert_close(
            &format!("layer {tap:?}"),
            layer,
            expected.clone(),
            tol::EXACT,
        );
        sum = Some(sum.map_or(expected.clone(), |s| s + expected));
    }
    let mean = sum.unwrap().div_scalar(taps.len() as f64);
    assert_close(
        "aggregate",
        all.maps,
        burn_explainable::filters::scale(mean),
        tol::EXACT,
    );
}

/// A small ViT: token taps on the patch grid work with every method.
#[test]
fn every_method_on_a_vit_token_grid_equals_a_loop() {
    use burn_explainable::models::vit::{Vit, VitConfig, VitTap};
    use burn_explainable::{AblationCam, AttentionRollout, EigenGradCam, HiResCam};
    let device = device();
    device.seed(11);
    let vit: Vit = VitConfig::new(32, 8, 2, 2, 16, 32, 5)
        .init(&device)
        .unwrap();
    let x = Lcg(3).tensor([2, 3, 32, 32], -1.0, 1.0, &device);
    let units = [[0i64, 3], [4, 1]];
    let targets = Targets::indices(units);
    let one = |b: usize, n: usize| Targets::indices([[units[b][n]]]);
    let check = |name: &str, e: &dyn Explainer<Vit, 4>, probe: &Probe<Vit, 4>| {
        let all = e.explain(probe, x.clone(), &targets).unwrap();
        assert_eq!(all.maps.dims()[..2], [2, 2], "{name}");
        for b in 0..2 {
            for n in 0..2 {
                let single = e
                    .explain(probe, x.clone().narrow(0, b, 1), &one(b, n))
                    .unwrap();
                assert_batch_invariant(
                    &format!("{name}: sample {b}, unit {n}"),
                    single.maps,
                    all.maps.clone().narrow(0, b, 1).narrow(1, n, 1),
                    tol::GOLDEN,
                );
            }
        }
    };
    // `Ln1` taps replicate the residual with the activation (the last
    // block's computes its class token alone); block outputs are cuts.
    for tap in [VitTap::Ln1(1), VitTap::Ln1(0), VitTap::Output(0)] {
        let probe = Probe::new(&vit).at(tap);
        check(&format!("Grad-CAM at {tap:?}"), &GradCam::new(), &probe);
        check(&format!("HiResCAM at {tap:?}"), &HiResCam::new(), &probe);
        check(
            &format!("Eigen-Grad-CAM at {tap:?}"),
            &EigenGradCam::new(),
            &probe,
        );
        check(
            &format!("Ablation-CAM at {tap:?}"),
            &AblationCam::new().with_batch_size(5),
            &probe,
        );
        check(
            &format!("Grad-CAM++ at {tap:?}"),
            &GradCamPlusPlus::new(),
            &probe,
        );
        check(&format!("Score-CAM at {tap:?}"), &ScoreCam::new(), &probe);
        check(
            &format!("tta(Grad-CAM) at {tap:?}"),
            &Tta::new(GradCam::new()).with_scales(vec![]),
            &probe,
        );
    }
    let probe = Probe::new(&vit).at(VitTap::Ln1(1));
    check("saliency", &Saliency::new(), &probe);
    check("rollout", &AttentionRollout::new(vec![4, 4]), &probe);
    check("pipeline(Grad-CAM)", &Pipeline::new(GradCam::new()), &probe);
    // FullGrad has no bias points to use here, and says so.
    assert!(matches!(
        FullGrad::new().explain(&probe, x.clone(), &targets),
        Err(Error::NoBiasPoints)
    ));
    // A fixed-size model: a tta scale is rejected by name, not a crash.
    match Tta::new(GradCam::new())
        .with_scales(vec![0.5])
        .explain(&probe, x, &targets)
    {
        Err(Error::Pass { pass, source }) => {
            assert!(pass.contains("0.5"), "{pass}");
            assert!(matches!(*source, Error::InputRejected { .. }), "{source:?}");
        }
        other => panic!("expected the scale to be named, got {other:?}"),
    }
}
