//! One contract over every explainer: shapes, finite values, batch
//! independence, determinism, the model left unchanged, and every error path.

mod common;

use burn::module::Param;
use burn::prelude::*;
use burn_explainable::ChannelReduction;
use burn_explainable::methods::{Baseline, Quadrature};
use burn_explainable::{
    AblationCam, Cam, Deconvolution, EigenCam, EigenGradCam, Error, Explainable, Explainer,
    FullGrad, GradCam, GradCamElementWise, GradCamPlusPlus, GradientFilter, GuidedBackprop,
    GuidedGradCam, HiResCam, InputXGradient, IntegratedGradients, LayerCam, Noise, Occlusion,
    Output, Pipeline, Probe, Saliency, ScoreCam, Smooth, Split, Statistic, Targets, Trace, Tta,
    XGradCam,
};
use common::{
    GoldenNet, GoldenTap, Npz, assert_batch_invariant, assert_close, device, tol, values,
};

type Method = Box<dyn Explainer<GoldenNet, 4>>;

/// Every explainer, each once, small enough for every backend.
fn every_method() -> Vec<(&'static str, Method)> {
    vec![
        ("cam", Box::new(Cam::new())),
        ("gradcam", Box::new(GradCam::new())),
        ("gradcampp", Box::new(GradCamPlusPlus::new())),
        ("scorecam", Box::new(ScoreCam::new())),
        ("gradients", Box::new(Saliency::new())),
        ("fullgrad", Box::new(FullGrad::new())),
        ("xgradcam", Box::new(XGradCam::new())),
        ("layercam", Box::new(LayerCam::new())),
        ("hirescam", Box::new(HiResCam::new())),
        ("gradcam elementwise", Box::new(GradCamElementWise::new())),
        ("eigencam", Box::new(EigenCam::new())),
        ("eigengradcam", Box::new(EigenGradCam::new())),
        (
            "gradcam eigen-smoothed",
            Box::new(GradCam::new().with_eigen_smooth(true)),
        ),
        ("ablationcam", Box::new(AblationCam::new())),
        (
            "scorecam (pytorch-grad-cam)",
            Box::new(ScoreCam::pytorch_grad_cam()),
        ),
        ("inputxgradient", Box::new(InputXGradient::new())),
        (
            "integrated gradients",
            Box::new(IntegratedGradients::new().with_steps(4)),
        ),
        ("occlusion", Box::new(Occlusion::new([3, 4, 4], [3, 2, 2]))),
        ("guided backprop", Box::new(GuidedBackprop::new())),
        ("deconvolution", Box::new(Deconvolution::new())),
        ("guided gradcam", Box::new(GuidedGradCam::new())),
        (
            "smoothgrad²(inputxgradient)",
            Box::new(
                Smooth::new(InputXGradient::new())
                    .with_repetitions(3)
                    .with_statistic(Statistic::MeanOfSquares),
            ),
        ),
        (
            "smooth(gradients)",
            Box::new(Smooth::new(Saliency::new()).with_repetitions(3)),
        ),
        (
            "tta(layercam)",
            Box::new(Tta::new(LayerCam::new()).with_scales(vec![0.5])),
        ),
        (
            "tta(integrated gradients)",
            Box::new(Tta::new(IntegratedGradients::new().with_steps(3)).with_scales(vec![2.0])),
        ),
        (
            "smooth(ablationcam)",
            Box::new(Smooth::new(AblationCam::new()).with_repetitions(2)),
        ),
        (
            "tta(gradcam)",
            Box::new(Tta::new(GradCam::new()).with_scales(vec![0.5])),
        ),
        (
            "tta(smooth(gradients))",
            Box::new(
                Tta::new(Smooth::new(Saliency::new()).with_repetitions(2)).with_scales(vec![2.0]),
            ),
        ),
        (
            "smooth(tta(gradcam))",
            Box::new(
                Smooth::new(Tta::new(GradCam::new()).with_scales(vec![0.5])).with_repetitions(2),
            ),
        ),
    ]
}

fn setup() -> (Device, GoldenNet, Tensor<4>, Targets) {
    let device = device();
    let inputs = Npz::golden("inputs.npz");
    let x: Tensor<4> = inputs.channels_first("x", &device);
    let t = inputs.indices("indices");
    (device.clone(), GoldenNet::model_b(&device), x, t)
}

/// Every parameter and running statistic of the model, as numbers.
fn snapshot(m: &GoldenNet) -> Vec<Vec<f32>> {
    let bn = m.bn1.as_ref().unwrap();
    [m.conv1.weight.val(), m.conv2.weight.val()]
        .into_iter()
        .map(|t| values(t).1)
        .chain(
            [
                m.conv1.bias.as_ref().unwrap().val(),
                bn.gamma.val(),
                bn.beta.val(),
                bn.running_mean.value(),
                bn.running_var.value(),
                m.logits.bias.as_ref().unwrap().val(),
            ]
            .into_iter()
            .map(|t| values(t).1),
        )
        .chain(std::iter::once(values(m.logits.weight.val()).1))
        .collect()
}

#[test]
fn every_method_shapes_finite_batch_independent_model_unchanged() {
    let (_, model, x, t) = setup();
    // A freshly built model has its BatchNorm in training mode: explaining
    // must still use the running statistics and leave them alone.
    let before = snapshot(&model);
    let probe = Probe::new(&model).at(GoldenTap::Relu2);
    let [b, _, h, w] = x.dims();
    for (name, method) in every_method() {
        let e = Pipeline::new(&method).run(&probe, x.clone(), &t).unwrap();
        let n = e.scores.dims()[1];
        assert_eq!(e.maps.dims(), [b, n, h, w], "{name}: maps shape");
        assert_eq!(e.indices.dims(), [b, n], "{name}: indices shape");
        let (_, v) = values(e.maps.clone());
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{name}: non-finite map values"
        );
        // Each sample alone gives the same maps as the whole batch (smooth
        // draws its noise per batch, so only its shape is checked here).
        if name.contains("smooth") {
            continue;
        }
        for i in 0..b {
            let one = Pipeline::new(&method)
                .run(&probe, x.clone().narrow(0, i, 1), &t.rows(i, 1))
                .unwrap();
            let batched = e.maps.clone().narrow(0, i, 1);
            assert_batch_invariant(name, one.maps, batched, tol::EXACT);
        }
    }
    assert_eq!(before, snapshot(&model), "the model changed");
}

#[test]
fn grad_cam_is_cam_over_positions_on_a_pooling_head() {
    let (_, model, x, t) = setup();
    let probe = Probe::new(&model).at(GoldenTap::Relu2);
    let cam = Cam::new().explain(&probe, x.clone(), &t).unwrap();
    let grad_cam = GradCam::new().explain(&probe, x, &t).unwrap();
    let [_, _, h, w] = cam.maps.dims();
    assert_close(
        "grad-cam · h·w vs cam",
        grad_cam.maps.mul_scalar((h * w) as f32),
        cam.maps,
        tol::EXACT,
    );
}

/// A hand-weighted model: a 1×1 convolution with weights (2, −1) and no bias,
/// ReLU, global average pooling, and a linear layer `[[1, 0], [0, 3]]` with
/// no bias. On the one-channel image `x = [[1, 2], [3, 4]]`:
/// - `A0 = relu(2x) = [[2, 4], [6, 8]]`, `A1 = relu(−x) = 0`;
/// - `score0 = mean(A0) · 1 = 5`;
/// - CAM, unit 0: `1·A0 + 0·A1 = [[2, 4], [6, 8]]`;
/// - Grad-CAM, unit 0: `∂score0/∂A0 = 1/4` everywhere, `∂score0/∂A1 = 0`,
///   so `α = (1/4, 0)` and the map is `A0/4 = [[0.5, 1], [1.5, 2]]`;
/// - Grad-CAM++, unit 0: with `G = 1/4`, `S = ΣA0 = 20`,
///   `a = G²/(2G² + S·G³) = (1/16)/(1/8 + 20/64) = 1/7`, and
///   `w0 = Σ_p a·G = 4 · (1/7) · (1/4) = 1/7`: the map is `A0/7`.
#[derive(Module, Debug)]
struct HandNet {
    conv: burn::nn::conv::Conv2d,
    fc: burn::nn::Linear,
}

impl HandNet {
    fn new(device: &Device) -> Self {
        let mut conv = burn::nn::conv::Conv2dConfig::new([1, 2], [1, 1])
            .with_bias(false)
            .init(device);
        conv.weight = Param::from_tensor(Tensor::from_floats([[[[2.0]]], [[[-1.0]]]], device));
        let mut fc = burn::nn::LinearConfig::new(2, 2)
            .with_bias(false)
            .init(device);
        fc.weight = Param::from_tensor(Tensor::from_floats([[1.0, 0.0], [0.0, 3.0]], device));
        Self { conv, fc }
    }
    fn features(&self, x: Tensor<4>) -> Tensor<4> {
        burn::nn::Relu::new().forward(self.conv.forward(x))
    }
    fn head(&self, a: Tensor<4>) -> Tensor<2> {
        self.fc.forward(a.mean_dims(&[2, 3]).flatten(1, 3))
    }
}

#[test]
fn hand_weighted_model() {
    let device = device();
    let model = HandNet::new(&device);
    let probe = Split::new(&model, HandNet::features, HandNet::head)
        .with_cam_weights(|m| m.fc.weight.val())
        .probe();
    let x = Tensor::<4>::from_floats([[[[1.0, 2.0], [3.0, 4.0]]]], &device);
    let t = Targets::indices([[0]]);
    let a0 = Tensor::<4>::from_floats([[[[2.0, 4.0], [6.0, 8.0]]]], &device);
    let cam = Cam::new().explain(&probe, x.clone(), &t).unwrap();
    assert_close(
        "score",
        cam.scores.clone(),
        Tensor::from_floats([[5.0]], &device),
        tol::EXACT,
    );
    assert_close("cam", cam.maps, a0.clone(), tol::EXACT);
    let gc = GradCam::new().explain(&probe, x.clone(), &t).unwrap();
    assert_close("grad-cam", gc.maps, a0.clone().div_scalar(4.0), tol::EXACT);
    let pp = GradCamPlusPlus::new().explain(&probe, x, &t).unwrap();
    assert_close("grad-cam++", pp.maps, a0.div_scalar(7.0), tol::EXACT);
}

/// A model whose tap enum has a point its forward pass never reaches, one
/// it reaches twice, and no bias points.
#[derive(Module, Debug)]
struct OddNet {
    inner: GoldenNet,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum OddTap {
    Features,
    Never,
    Twice,
}

impl Explainable<4> for OddNet {
    type Tap = OddTap;
    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<OddTap, 4>) -> Output {
        let a = trace.tap(OddTap::Twice, x);
        let a = trace.tap(OddTap::Twice, a);
        let a = self.inner.conv1.forward(a);
        let a = trace.tap(OddTap::Features, burn::nn::Relu::new().forward(a));
        self.inner
            .logits
            .forward(
                self.inner
                    .conv2
                    .forward(a)
                    .mean_dims(&[2, 3])
                    .flatten::<2>(1, 3),
            )
            .into()
    }
}

/// A model that reads a tensor computed after a ReLU in two places without
/// marking it with `Trace::branch`.
#[derive(Module, Debug)]
struct Unbranched {
    inner: GoldenNet,
}

impl Explainable<4> for Unbranched {
    type Tap = GoldenTap;

    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<GoldenTap, 4>) -> Output {
        let a = trace.relu(self.inner.conv1.forward(x));
        let shared = a.mul_scalar(2.0);
        let b = trace.relu(self.inner.conv2.forward(shared.clone()));
        let [rows, ..] = b.dims();
        let logits = self
            .inner
            .logits
            .forward(b.mean_dims(&[2, 3]).flatten::<2>(1, 3));
        (logits + shared.mean_dims(&[1, 2, 3]).reshape([rows, 1])).into()
    }
}

fn err<T: std::fmt::Debug>(r: burn_explainable::Result<T>) -> Error {
    r.expect_err("an error")
}

#[test]
fn bad_input_is_an_error_and_leaves_the_model_unchanged() {
    let (device, model, x, t) = setup();
    let before = snapshot(&model);
    let probe = Probe::new(&model).at(GoldenTap::Relu2);
    let [b, c, h, w] = x.dims();
    for (name, method) in every_method() {
        // Batch mismatch between input and indices.
        let fewer = x.clone().narrow(0, 0, b - 1);
        assert!(
            matches!(
                err(method.explain(&probe, fewer, &t)),
                Error::BatchMismatch { .. }
            ),
            "{name}: batch mismatch"
        );
        // 1-D indices.
        let one_d = Targets::from_data(TensorData::new(vec![1i64; b], [b]));
        assert!(
            matches!(
                err(method.explain(&probe, x.clone(), &one_d)),
                Error::Rank { .. }
            ),
            "{name}: 1-D indices"
        );
        // An index past the logits, and a negative one.
        let logits = probe.forward(x.clone()).unwrap().units();
        for bad in [logits as i64, -1] {
            let targets = Targets::from_rows(&vec![vec![bad]; b]);
            match err(method.explain(&probe, x.clone(), &targets)) {
                Error::TargetOutOfRange { index, units, .. } => {
                    assert_eq!((index, units), (bad, logits), "{name}")
                }
                Error::Pass { source, .. } => {
                    assert!(
                        matches!(*source, Error::TargetOutOfRange { .. }),
                        "{name}: {source}"
                    )
                }
                other => panic!("{name}: index {bad}: {other}"),
            }
        }
        // Empty batch and empty spatial dimension.
        let empty_batch = Tensor::<4>::zeros([0, c, h, w], &device);
        assert!(
            matches!(
                err(method.explain(&probe, empty_batch, &Targets::top_k(1))),
                Error::Empty { .. } | Error::Pass { .. }
            ),
            "{name}: empty batch"
        );
        let empty_space = Tensor::<4>::zeros([b, c, 0, w], &device);
        assert!(
            matches!(
                err(method.explain(&probe, empty_space, &Targets::top_k(1))),
                Error::Empty { .. } | Error::Pass { .. } | Error::InvalidConfig { .. }
            ),
            "{name}: empty spatial dimension"
        );
        // NaN and infinity in the input: a clear error, never propagated.
        for poison in [f32::NAN, f32::INFINITY] {
            let bad = x.clone().slice_fill([0..1, 0..1, 0..1, 0..1], poison);
            match err(method.explain(&probe, bad, &t)) {
                Error::NonFinite { .. } => {}
                Error::Pass { source, .. } => {
                    assert!(
                        matches!(*source, Error::NonFinite { .. }),
                        "{name}: {source}"
                    )
                }
                other => panic!("{name}: {poison}: {other}"),
            }
        }
        // Top-k larger than the number of units.
        assert!(
            matches!(
                err(method.explain(&probe, x.clone(), &Targets::top_k(logits + 1))),
                Error::TopKTooLarge { .. } | Error::Pass { .. }
            ),
            "{name}: top-k"
        );
    }
    assert_eq!(before, snapshot(&model), "the model changed");
}

#[test]
fn method_specific_errors() {
    let (device, model, x, t) = setup();
    let untapped = Probe::new(&model);
    for method in [
        &Cam::new() as &dyn Explainer<GoldenNet, 4>,
        &GradCam::new(),
        &GradCamPlusPlus::new(),
        &ScoreCam::new(),
        &XGradCam::new(),
        &LayerCam::new(),
        &HiResCam::new(),
        &GradCamElementWise::new(),
        &EigenCam::new(),
        &EigenGradCam::new(),
        &AblationCam::new(),
        &GuidedGradCam::new(),
    ] {
        assert!(matches!(
            err(method.explain(&untapped, x.clone(), &t)),
            Error::NoTap { .. }
        ));
    }
    // CAM needs a pooling head right after the tap.
    let relu1 = Probe::new(&model).at(GoldenTap::Relu1);
    assert!(matches!(
        err(Cam::new().explain(&relu1, x.clone(), &t)),
        Error::NoCamWeights { .. }
    ));
    // Taps the forward pass never reaches, or reaches twice.
    let odd = OddNet {
        inner: GoldenNet::model_a(&device),
    };
    let never = Probe::new(&odd).at(OddTap::Never);
    assert!(matches!(
        err(GradCam::new().explain(&never, x.clone(), &t)),
        Error::TapNotReached { .. }
    ));
    let twice = Probe::new(&odd).at(OddTap::Twice);
    assert!(matches!(
        err(GradCam::new().explain(&twice, x.clone(), &t)),
        Error::TapRepeated { count: 2, .. }
    ));
    // FullGrad on a model that reports no bias points.
    let fine = Probe::new(&odd).at(OddTap::Features);
    assert!(matches!(
        err(FullGrad::new().explain(&fine, x.clone(), &t)),
        Error::NoBiasPoints
    ));
    // Wrong number of explicit biases.
    let probe = Probe::new(&model);
    let one = FullGrad::new().with_biases(vec![Tensor::zeros([8], &device)]);
    assert!(matches!(
        err(one.explain(&probe, x.clone(), &t)),
        Error::Shape { .. }
    ));
    // Zero-sized chunks.
    let tapped = Probe::new(&model).at(GoldenTap::Relu2);
    assert!(matches!(
        err(ScoreCam::new()
            .with_batch_size(0)
            .explain(&tapped, x.clone(), &t)),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        err(GradCam::new()
            .with_units_per_pass(0)
            .explain(&tapped, x.clone(), &t)),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        err(Pipeline::new(GradCam::new())
            .with_batch_size(0)
            .run(&tapped, x.clone(), &t)),
        Error::InvalidConfig { .. }
    ));
    // A gradient filter that changes the shape.
    let shrink = Saliency::new().with_filter(GradientFilter::Custom(std::sync::Arc::new(
        |g: Tensor<3>| {
            let [r, c, p] = g.dims();
            g.narrow(2, 0, p / 2).reshape([r, c, p / 2])
        },
    )));
    assert!(matches!(
        err(shrink.explain(&probe, x.clone(), &t)),
        Error::Shape { .. }
    ));
    // Combinator settings.
    let smooth = |s: Smooth<Saliency>| err(s.explain(&probe, x.clone(), &t));
    assert!(matches!(
        smooth(Smooth::new(Saliency::new()).with_repetitions(0)),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        smooth(Smooth::new(Saliency::new()).with_noise(Noise::Absolute(-0.1))),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        smooth(Smooth::new(Saliency::new()).with_noise(Noise::Absolute(f64::NAN))),
        Error::InvalidConfig { .. }
    ));
    let tta = |scales: Vec<f64>| {
        err(Tta::new(GradCam::new())
            .with_scales(scales)
            .explain(&tapped, x.clone(), &t))
    };
    for scales in [vec![0.0], vec![-1.0], vec![f64::NAN], vec![0.01]] {
        assert!(
            matches!(tta(scales.clone()), Error::InvalidConfig { .. }),
            "scales {scales:?}"
        );
    }
    // The new methods' settings.
    let config = |e: Error| matches!(e, Error::InvalidConfig { .. });
    let bad: Vec<(&str, Box<dyn Explainer<GoldenNet, 4>>)> = vec![
        (
            "xgradcam ε < 0",
            Box::new(XGradCam::new().with_epsilon(-1.0)),
        ),
        (
            "ablation chunk 0",
            Box::new(AblationCam::new().with_batch_size(0)),
        ),
        (
            "ablation value NaN",
            Box::new(AblationCam::new().with_value(f64::NAN)),
        ),
        (
            "ig 0 steps",
            Box::new(IntegratedGradients::new().with_steps(0)),
        ),
        (
            "trapezoid 1 step",
            Box::new(
                IntegratedGradients::new()
                    .with_steps(1)
                    .with_quadrature(Quadrature::RiemannTrapezoid),
            ),
        ),
        (
            "ig 0 steps per pass",
            Box::new(IntegratedGradients::new().with_steps_per_pass(0)),
        ),
        (
            "ig baseline NaN",
            Box::new(IntegratedGradients::new().with_baseline(Baseline::Constant(f64::NAN))),
        ),
        (
            "occlusion window too large",
            Box::new(Occlusion::new([3, 99, 4], [3, 2, 2])),
        ),
        (
            "occlusion stride 0",
            Box::new(Occlusion::new([3, 4, 4], [3, 0, 2])),
        ),
        (
            "occlusion 0 windows per pass",
            Box::new(Occlusion::new([3, 4, 4], [3, 2, 2]).with_windows_per_pass(0)),
        ),
        (
            "fullgrad max",
            Box::new(FullGrad::new().with_reduction(ChannelReduction::Max)),
        ),
        (
            "vargrad of one pass",
            Box::new(
                Smooth::new(Saliency::new())
                    .with_repetitions(1)
                    .with_statistic(Statistic::Variance),
            ),
        ),
    ];
    for (name, method) in bad {
        let e = err(method.explain(&tapped, x.clone(), &t));
        assert!(config(e), "{name}");
    }
    for (name, method) in [
        (
            "occlusion window of the wrong rank",
            &Occlusion::new([4, 4], [2, 2]) as &dyn Explainer<GoldenNet, 4>,
        ),
        (
            "ig baseline of the wrong shape",
            &IntegratedGradients::new().with_baseline(Baseline::Given(TensorData::new(
                vec![0f32; 3],
                [1, 3, 1, 1],
            ))),
        ),
        (
            "noise-only smooth with too few given noises",
            &Smooth::new(Saliency::new())
                .with_clean(false)
                .with_repetitions(3)
                .with_noise(Noise::Given(vec![TensorData::new(
                    vec![0f32; x.dims().iter().product()],
                    x.dims(),
                )])),
        ),
    ] {
        assert!(
            matches!(
                err(method.explain(&tapped, x.clone(), &t)),
                Error::Shape { .. }
            ),
            "{name}"
        );
    }
    // Guided methods need the model's ReLUs, and a cut at every tensor two
    // segments read.
    assert!(matches!(
        err(GuidedBackprop::new().explain(&fine, x.clone(), &t)),
        Error::NoReluPoints { .. }
    ));
    let unbranched = Unbranched {
        inner: GoldenNet::model_a(&device),
    };
    match err(Deconvolution::new().explain(&Probe::new(&unbranched), x.clone(), &t)) {
        Error::ModelPanicked { message, .. } => {
            assert!(message.contains("Trace::branch"), "{message}")
        }
        other => panic!("unbranched model: {other}"),
    }
}

#[test]
fn combinator_identities() {
    let (_, model, x, t) = setup();
    let probe = Probe::new(&model).at(GoldenTap::Relu1);
    let inner = GradCam::new().explain(&probe, x.clone(), &t).unwrap();
    // One repetition, or no noise, is the inner method.
    let once = Smooth::new(GradCam::new())
        .with_repetitions(1)
        .explain(&probe, x.clone(), &t)
        .unwrap();
    assert_close("smooth ×1", once.maps, inner.maps.clone(), tol::EXACT);
    let quiet = Smooth::new(GradCam::new())
        .with_noise(Noise::Absolute(0.0))
        .with_repetitions(3);
    let quiet = quiet.explain(&probe, x.clone(), &t).unwrap();
    assert_close("smooth σ=0", quiet.maps, inner.maps.clone(), tol::EXACT);
    assert_close(
        "smooth σ=0 scores",
        quiet.scores,
        inner.scores.clone(),
        tol::EXACT,
    );
    // No scales, no flip: the inner method resized to the input.
    let plain = Tta::new(GradCam::new())
        .with_scales(vec![])
        .with_flip(false);
    let plain = plain.explain(&probe, x.clone(), &t).unwrap();
    let size = x.dims()[2..].to_vec();
    let resized = burn_explainable::resize::resize(inner.maps.clone(), &size).unwrap();
    assert_close("tta identity", plain.maps, resized, tol::EXACT);
    // Nesting both ways keeps the identities.
    let nested = Smooth::new(
        Tta::new(GradCam::new())
            .with_scales(vec![])
            .with_flip(false),
    )
    .with_repetitions(1);
    assert_close(
        "smooth(tta)",
        nested.explain(&probe, x.clone(), &t).unwrap().maps,
        inner.maps.clone(),
        tol::EXACT,
    );
    let nested = Tta::new(Smooth::new(GradCam::new()).with_repetitions(1))
        .with_scales(vec![])
        .with_flip(false);
    assert_close(
        "tta(smooth)",
        nested.explain(&probe, x.clone(), &t).unwrap().maps,
        inner.maps,
        tol::EXACT,
    );
}

#[test]
fn tta_flip_invariance_on_a_symmetric_model_and_input() {
    let (_, mut model, x, t) = setup();
    // Kernels symmetric under a left-right flip make the network equivariant.
    for conv in [&mut model.conv1, &mut model.conv2] {
        let w = conv.weight.val();
        conv.weight = Param::from_tensor((w.clone() + w.flip([3])).div_scalar(2.0));
    }
    let x = (x.clone() + x.flip([3])).div_scalar(2.0);
    let probe = Probe::new(&model).at(GoldenTap::Relu1);
    let with = Tta::new(GradCam::new())
        .with_scales(vec![0.5, 2.0])
        .explain(&probe, x.clone(), &t)
        .unwrap();
    let without = Tta::new(GradCam::new())
        .with_scales(vec![0.5, 2.0])
        .with_flip(false)
        .explain(&probe, x, &t)
        .unwrap();
    assert_close("flip invariance", with.maps, without.maps, tol::EXACT);
}

#[test]
fn smooth_is_deterministic_per_seed() {
    let (_, model, x, t) = setup();
    let probe = Probe::new(&model);
    let run = |seed| {
        let s = Smooth::new(Saliency::new())
            .with_repetitions(4)
            .with_seed(seed);
        values(s.explain(&probe, x.clone(), &t).unwrap().maps).1
    };
    let a = run(7);
    assert_eq!(a, run(7), "same seed, same bits");
    // And from other threads, while other tests run.
    let from_threads: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| run(7))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        from_threads.iter().all(|v| *v == a),
        "threads changed the result"
    );
    assert_ne!(a, run(8), "different seeds, different maps");
}
