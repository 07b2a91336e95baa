//! Properties that must hold for any weights: FullGrad completeness on
//! random ReLU nets, FullGrad's combination of its terms for every ψ,
//! saliency of a linear model.

mod common;

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn_explainable::methods::{ChannelReduction, Quadrature, cam_weights, full_grad_maps};
use burn_explainable::resize::resize;
use burn_explainable::{
    AblationCam, Attributor, EigenGradCam, Error, Explainable, Explainer, Filter, FullGrad,
    GradCam, GradCamElementWise, HiResCam, InputXGradient, IntegratedGradients, LayerCam, Noise,
    Occlusion, Output, Probe, Saliency, Smooth, Statistic, Targets, Trace, Tta, XGradCam,
};
use common::{GoldenNet, GoldenTap, Lcg, assert_close, device, tol, values};

/// conv(3→4, bias) → BatchNorm (random statistics) → ReLU → conv(4→5, bias)
/// → ReLU → GAP → linear(5→3, bias), with random weights.
fn random_net(seed: u64, device: &Device) -> GoldenNet {
    let mut r = Lcg(seed);
    let mut conv = |i, o| {
        let mut c = Conv2dConfig::new([i, o], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        c.weight = Param::from_tensor(r.tensor([o, i, 3, 3], -0.6, 0.6, device));
        c.bias = Some(Param::from_tensor(r.tensor([o], -0.3, 0.3, device)));
        c
    };
    let conv1 = conv(3, 4);
    let conv2 = conv(4, 5);
    let mut bn = BatchNormConfig::new(4).init(device);
    bn.gamma = Param::from_tensor(r.tensor([4], 0.5, 1.5, device));
    bn.beta = Param::from_tensor(r.tensor([4], -0.2, 0.2, device));
    bn.running_mean = RunningState::new(r.tensor([4], -0.2, 0.2, device));
    bn.running_var = RunningState::new(r.tensor([4], 0.5, 1.5, device));
    let mut logits = LinearConfig::new(5, 3).init(device);
    logits.weight = Param::from_tensor(r.tensor([5, 3], -1.0, 1.0, device));
    logits.bias = Some(Param::from_tensor(r.tensor([3], -0.5, 0.5, device)));
    GoldenNet {
        conv1,
        bn1: Some(bn),
        conv2,
        logits,
    }
}

#[test]
fn full_grad_completeness_on_random_relu_nets() {
    let device = device();
    for seed in 1..=5u64 {
        let model = random_net(seed, &device);
        let probe = Probe::new(&model);
        let x = Lcg(seed + 100).tensor([2, 3, 7, 9], -1.0, 1.0, &device);
        let targets = Targets::indices([[0, 2], [1, 0]]);
        // Raw terms, no normalisation: s = Σ x·∂s/∂x + Σ_l Σ b_l·∂s/∂z_l + b_logit.
        let g = probe
            .input_gradients(x.clone(), &targets, 16, true)
            .unwrap();
        assert_eq!(g.biases.len(), 3, "conv1, bn1, conv2");
        let [b, n] = g.scores.dims();
        let xr = x
            .clone()
            .unsqueeze_dim::<5>(1)
            .expand([b, n, 3, 7, 9])
            .reshape([b * n, 3, 7, 9]);
        let mut total = (xr * g.gradients).sum_dims(&[1, 2, 3]).reshape([b, n]);
        for (bias, grad) in &g.biases {
            let k = bias.dims()[0];
            let term = grad.clone().sum_dims(&[2, 3]).reshape([b * n, k])
                * bias.clone().unsqueeze_dim::<2>(0);
            total = total + term.sum_dim(1).reshape([b, n]);
        }
        let logit_bias = model.logits.bias.as_ref().unwrap().val();
        let idx =
            Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 2, 1, 0], [b, n]), &device);
        let b_logit = logit_bias
            .unsqueeze_dim::<2>(0)
            .repeat_dim(0, b)
            .gather(1, idx);
        assert_close(
            &format!("completeness, seed {seed}"),
            total + b_logit,
            g.scores,
            tol::GOLDEN,
        );
    }
}

/// `logits = W·flatten(x) + b`.
#[derive(Module, Debug)]
struct LinearNet {
    fc: Linear,
}

impl Explainable<4> for LinearNet {
    type Tap = ();
    fn forward_traced(&self, x: Tensor<4>, _: &mut Trace<(), 4>) -> Output {
        self.fc.forward(x.flatten::<2>(1, 3)).into()
    }
    fn check_input(&self, dims: &[usize]) -> Result<(), String> {
        let inputs: usize = dims[1..].iter().product();
        match inputs == self.fc.weight.dims()[0] {
            true => Ok(()),
            false => Err(format!(
                "the linear layer takes {} values per sample",
                self.fc.weight.dims()[0]
            )),
        }
    }
}

#[test]
fn tta_names_the_scale_a_fixed_size_model_rejects() {
    let device = device();
    let model = LinearNet {
        fc: LinearConfig::new(3 * 4 * 4, 2).init(&device),
    };
    let x = Lcg(5).tensor([1, 3, 4, 4], -1.0, 1.0, &device);
    let tta = Tta::new(Saliency::new())
        .with_scales(vec![0.5])
        .with_flip(false);
    match tta.explain(&Probe::new(&model), x, &Targets::top_k(1)) {
        Err(Error::Pass { pass, source }) => {
            assert!(pass.contains("scale 0.5"), "{pass}");
            assert!(matches!(*source, Error::InputRejected { .. }), "{source}");
        }
        other => panic!("expected the scale-0.5 pass to be rejected, got {other:?}"),
    }
}

#[test]
fn saliency_of_a_linear_model_is_its_weights() {
    let device = device();
    let (c, h, w, l) = (3, 4, 5, 6);
    let mut fc = LinearConfig::new(c * h * w, l).init(&device);
    let weight = Lcg(3).tensor([c * h * w, l], -1.0, 1.0, &device);
    fc.weight = Param::from_tensor(weight.clone());
    let model = LinearNet { fc };
    let x = Lcg(4).tensor([2, c, h, w], -1.0, 1.0, &device);
    let e = Saliency::new()
        .explain(&Probe::new(&model), x, &Targets::indices([[5, 1], [0, 5]]))
        .unwrap();
    // ∂s_k/∂x = W[:, k]: the map is mean_c |W[(c, i, j), k]|.
    let (_, wv) = values(weight);
    let mut expected = Vec::new();
    for units in [[5, 1], [0, 5]] {
        for k in units {
            for p in 0..h * w {
                let s: f32 = (0..c).map(|ch| wv[(ch * h * w + p) * l + k].abs()).sum();
                expected.push(s / c as f32);
            }
        }
    }
    let expected = Tensor::<4>::from_data(TensorData::new(expected, [2, 2, h, w]), &device);
    assert_close("saliency of a linear model", e.maps, expected, tol::EXACT);
}

/// `mean_c ψ(s_c · v[r, c])` in f64, ψ written out per channel from its
/// definition: the pointwise part, then min-max over the slice (a constant
/// slice becomes zeros).
fn direct_psi_mean(
    psi: Filter,
    v: &[f32],
    dims: [usize; 4],
    scale: &[f32],
    reduction: ChannelReduction,
) -> Vec<f32> {
    let [rows, channels, h, w] = dims;
    assert_eq!(scale.len(), channels, "one scale per channel");
    let p = h * w;
    let pointwise = |x: f64| match psi {
        Filter::Normalize | Filter::Scale => x,
        Filter::Positive | Filter::PositiveNormalize | Filter::PositiveScale => x.max(0.0),
        Filter::Negative => x.min(0.0),
        Filter::Absolute | Filter::AbsoluteNormalize | Filter::AbsoluteScale => x.abs(),
        Filter::NegativeNormalize => x.min(0.0).abs(),
        other => panic!("unlisted filter {other:?}"),
    };
    let normalises = matches!(
        psi,
        Filter::Normalize
            | Filter::PositiveNormalize
            | Filter::AbsoluteNormalize
            | Filter::NegativeNormalize
    );
    // pytorch-grad-cam's normalisation: `(y − min) / (1e-7 + max)`.
    let scales = matches!(
        psi,
        Filter::Scale | Filter::PositiveScale | Filter::AbsoluteScale
    );
    let divisor = match reduction {
        ChannelReduction::Mean => channels as f64,
        _ => 1.0,
    };
    let mut out = vec![0f64; rows * p];
    for r in 0..rows {
        for (c, &s) in scale.iter().enumerate() {
            let start = (r * channels + c) * p;
            let mut y: Vec<f64> = v[start..start + p]
                .iter()
                .map(|&x| pointwise(s as f64 * x as f64))
                .collect();
            if normalises {
                let min = y.iter().cloned().fold(f64::INFINITY, f64::min);
                y.iter_mut().for_each(|x| *x -= min);
                let max = y.iter().cloned().fold(0.0, f64::max);
                if max > 0.0 {
                    y.iter_mut().for_each(|x| *x /= max);
                }
            }
            if scales {
                let min = y.iter().cloned().fold(f64::INFINITY, f64::min);
                y.iter_mut().for_each(|x| *x -= min);
                let max = y.iter().cloned().fold(0.0, f64::max);
                y.iter_mut().for_each(|x| *x /= 1e-7 + max);
            }
            for (o, x) in out[r * p..(r + 1) * p].iter_mut().zip(&y) {
                *o += x / divisor;
            }
        }
    }
    out.into_iter().map(|x| x as f32).collect()
}

#[test]
fn full_grad_combines_its_terms_as_defined_for_every_psi() {
    let device = device();
    let (rows, h, w) = (3, 6, 5);
    let mut rng = Lcg(21);
    let input = rng.tensor([rows, 2, h, w], -1.0, 1.0, &device);
    let input_grad = rng.tensor([rows, 2, h, w], -1.0, 1.0, &device);
    // Bias points at three sizes, two of them sharing one (their terms are
    // resized together), with a zero bias, negative biases, a constant
    // channel and a channel far from zero.
    let specs: [([f32; 3], [usize; 2]); 4] = [
        ([0.5, -2.0, 0.0], [3, 3]),
        ([1.5, 0.25, -0.75], [2, 4]),
        ([-1.0, 3.0, 0.1], [3, 3]),
        ([2.0, -0.5, 1.0], [6, 5]),
    ];
    let mut points = Vec::new();
    for (i, (bias, [bh, bw])) in specs.iter().enumerate() {
        let mut g = values(rng.tensor([rows, 3, *bh, *bw], -1.0, 1.0, &device)).1;
        let p = bh * bw;
        if i == 0 {
            g[p..2 * p].fill(0.625); // row 0, channel 1: constant
        }
        if i == 2 {
            g[..p].iter_mut().for_each(|x| *x = 50.0 + *x * 1e-2); // row 0, channel 0
        }
        points.push((bias.to_vec(), g, [rows, 3, *bh, *bw]));
    }
    let filters = [
        Filter::Normalize,
        Filter::Positive,
        Filter::Negative,
        Filter::Absolute,
        Filter::PositiveNormalize,
        Filter::AbsoluteNormalize,
        Filter::NegativeNormalize,
        Filter::Scale,
        Filter::PositiveScale,
        Filter::AbsoluteScale,
    ];
    let reductions = [ChannelReduction::Mean, ChannelReduction::Sum];
    for (psi, reduction) in filters.into_iter().flat_map(|f| reductions.map(|r| (f, r))) {
        let tensor = |v: Vec<f32>, dims: [usize; 4]| {
            Tensor::<4>::from_data(TensorData::new(v, dims), &device)
        };
        let (_, xv) = values(input.clone() * input_grad.clone());
        let mut expected = tensor(
            direct_psi_mean(psi, &xv, [rows, 2, h, w], &[1.0, 1.0], reduction),
            [rows, 1, h, w],
        );
        for (bias, g, dims) in &points {
            let term = tensor(
                direct_psi_mean(psi, g, *dims, bias, reduction),
                [rows, 1, dims[2], dims[3]],
            );
            expected = expected + resize(term, &[h, w]).unwrap();
        }
        let biases = points
            .iter()
            .map(|(b, g, dims)| {
                (
                    Tensor::<1>::from_floats(b.as_slice(), &device),
                    tensor(g.clone(), *dims),
                )
            })
            .collect();
        let maps =
            full_grad_maps(input.clone(), input_grad.clone(), biases, psi, reduction).unwrap();
        assert_close(
            &format!("FullGrad maps, ψ = {psi:?}, {reduction:?}"),
            maps,
            expected,
            tol::EXACT,
        );
    }
}

#[test]
fn full_grad_maps_name_a_bias_that_does_not_fit_its_point() {
    let device = device();
    let x = Tensor::<4>::ones([2, 3, 4, 4], &device);
    let wrong = vec![(
        Tensor::<1>::ones([5], &device),
        Tensor::<4>::ones([2, 4, 2, 2], &device),
    )];
    match full_grad_maps(
        x.clone(),
        x,
        wrong,
        Filter::AbsoluteNormalize,
        ChannelReduction::Mean,
    ) {
        Err(Error::Shape {
            expected, actual, ..
        }) => {
            assert_eq!(expected, vec![2, 5, 2, 2]);
            assert_eq!(actual, vec![2, 4, 2, 2]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
}

/// Input-gradient methods split their units over passes; the split must not
/// change the result (FullGrad reduces each pass before the next one runs).
#[test]
fn input_gradient_methods_do_not_depend_on_units_per_pass() {
    let device = device();
    let model = random_net(7, &device);
    let probe = Probe::new(&model);
    let x = Lcg(8).tensor([2, 3, 7, 9], -1.0, 1.0, &device);
    let targets = Targets::indices([[0, 2, 1], [1, 0, 2]]);
    for per_pass in [1, 2] {
        let one = FullGrad::new()
            .with_units_per_pass(3)
            .explain(&probe, x.clone(), &targets)
            .unwrap();
        let split = FullGrad::new()
            .with_units_per_pass(per_pass)
            .explain(&probe, x.clone(), &targets)
            .unwrap();
        assert_close("FullGrad scores", split.scores, one.scores, tol::EXACT);
        assert_close(
            &format!("FullGrad maps, {per_pass} units per pass"),
            split.maps,
            one.maps,
            tol::EXACT,
        );
        let one = Saliency::new()
            .with_units_per_pass(3)
            .explain(&probe, x.clone(), &targets)
            .unwrap();
        let split = Saliency::new()
            .with_units_per_pass(per_pass)
            .explain(&probe, x.clone(), &targets)
            .unwrap();
        assert_close(
            &format!("saliency maps, {per_pass} units per pass"),
            split.maps,
            one.maps,
            tol::EXACT,
        );
    }
}

/// A linear model with random weights and bias, and an input.
fn linear_case(device: &Device) -> (LinearNet, Tensor<4>, Targets) {
    let (c, h, w, l) = (3, 4, 5, 6);
    let mut fc = LinearConfig::new(c * h * w, l).init(device);
    fc.weight = Param::from_tensor(Lcg(7).tensor([c * h * w, l], -1.0, 1.0, device));
    fc.bias = Some(Param::from_tensor(Lcg(8).tensor([l], -1.0, 1.0, device)));
    let x = Lcg(9).tensor([2, c, h, w], -1.0, 1.0, device);
    (LinearNet { fc }, x, Targets::indices([[5, 1], [0, 5]]))
}

#[test]
fn on_a_linear_model_integrated_gradients_and_occlusion_are_input_x_gradient() {
    let device = device();
    let (model, x, targets) = linear_case(&device);
    let probe = Probe::new(&model);
    let ixg = InputXGradient::new()
        .attribute(&probe, x.clone(), &targets)
        .unwrap();
    let s = ixg.scores.clone();
    let at_zero = probe.forward(x.clone().zeros_like()).unwrap().flat();
    // s(x) − s(0) for the targets [[5, 1], [0, 5]].
    let (_, z) = values(at_zero);
    let l = 6;
    let gap = s.clone() - Tensor::<2>::from_floats([[z[5], z[1]], [z[l], z[l + 5]]], &device);
    // Every rule whose steps sum to 1 is exact on a constant gradient, and
    // the attributions sum to s(x) − s(0) (completeness).
    for q in [
        Quadrature::GaussLegendre,
        Quadrature::RiemannLeft,
        Quadrature::RiemannRight,
        Quadrature::RiemannMiddle,
    ] {
        let (a, delta) = IntegratedGradients::new()
            .with_steps(5)
            .with_quadrature(q)
            .attribute_with_delta(&probe, x.clone(), &targets)
            .unwrap();
        assert_close(&format!("{q:?}"), a.values, ixg.values.clone(), tol::EXACT);
        let sums = ixg
            .values
            .clone()
            .flatten::<2>(1, 3)
            .sum_dim(1)
            .reshape([2, 2]);
        assert_close(
            &format!("{q:?} completeness"),
            sums,
            gap.clone(),
            tol::EXACT,
        );
        let (_, d) = values(delta);
        assert!(d.iter().all(|v| v.abs() < 1e-4), "{q:?} delta {d:?}");
    }
    // captum's trapezoid steps sum to (n − 1)/n: its delta is −(s(x) − s(0))/n.
    let n = 5;
    let (a, delta) = IntegratedGradients::new()
        .with_steps(n)
        .with_quadrature(Quadrature::RiemannTrapezoid)
        .attribute_with_delta(&probe, x.clone(), &targets)
        .unwrap();
    let short = (n - 1) as f64 / n as f64;
    assert_close(
        "trapezoid",
        a.values,
        ixg.values.clone().mul_scalar(short),
        tol::EXACT,
    );
    assert_close(
        "trapezoid delta",
        delta,
        gap.div_scalar(-(n as f64)),
        tol::EXACT,
    );
    // Occluding one element with 0 removes exactly its term x·w.
    let occlusion = Occlusion::new([1, 1, 1], [1, 1, 1])
        .attribute(&probe, x, &targets)
        .unwrap();
    assert_close("occlusion", occlusion.values, ixg.values, tol::EXACT);
}

#[test]
fn cam_variants_agree_where_their_definitions_meet() {
    let device = device();
    for seed in 1..=3u64 {
        let model = random_net(seed, &device);
        let x = Lcg(seed + 200).tensor([2, 3, 7, 9], -1.0, 1.0, &device);
        let targets = Targets::indices([[0, 2], [1, 0]]);
        let maps = |tap, m: &dyn Explainer<GoldenNet, 4>| {
            m.explain(&Probe::new(&model).at(tap), x.clone(), &targets)
                .unwrap()
                .maps
        };
        // After a ReLU, A ≥ 0: relu(G) ⊙ A = relu(G ⊙ A), at any tap.
        for tap in [GoldenTap::Relu1, GoldenTap::Relu2] {
            assert_close(
                "layer-cam vs element-wise",
                maps(tap, &LayerCam::new()),
                maps(tap, &GradCamElementWise::new()),
                tol::EXACT,
            );
        }
        // Before a global average pool the gradient is constant over the
        // positions: HiResCAM is Grad-CAM, Eigen-Grad-CAM is Grad-CAM with
        // eigen smoothing, XGrad-CAM's weights are Grad-CAM's up to ε.
        let tap = GoldenTap::Relu2;
        let grad_cam = maps(tap, &GradCam::new());
        assert_close(
            "hirescam",
            maps(tap, &HiResCam::new()),
            grad_cam.clone(),
            1e-5,
        );
        assert_close("xgradcam", maps(tap, &XGradCam::new()), grad_cam, 1e-4);
        assert_close(
            "eigen-grad-cam",
            maps(tap, &EigenGradCam::new()),
            maps(tap, &GradCam::new().with_eigen_smooth(true)),
            1e-4,
        );
        // And the head is linear after the pool: ablating channel k drops
        // the logit by exactly W[k, t] · mean_p A_k.
        let probe = Probe::new(&model).at(tap);
        let a = AblationCam::new()
            .ablations(&probe, x.clone(), &targets)
            .unwrap();
        let [b, k, h, w] = a.activation.dims();
        let means = a.activation.clone().reshape([b, k, h * w]).mean_dim(2); // [B, K, 1]
        let weights = model.logits.weight.val(); // [K, L]
        let cam = cam_weights(weights, a.indices.clone()); // [B, N, K]
        let drop = cam * means.reshape([b, 1, k]);
        let expected = a.scores.clone().unsqueeze_dim::<3>(2) - drop;
        assert_close("ablated scores", a.ablated, expected, 1e-5);
    }
}

#[test]
fn noise_free_smoothing_keeps_the_inner_attribution() {
    let device = device();
    let model = random_net(4, &device);
    let probe = Probe::new(&model);
    let x = Lcg(44).tensor([2, 3, 7, 9], -1.0, 1.0, &device);
    let targets = Targets::indices([[0, 2], [1, 0]]);
    let inner = InputXGradient::new();
    let plain = inner.attribute(&probe, x.clone(), &targets).unwrap();
    let zeros = vec![TensorData::zeros::<f32, _>(x.dims()); 3];
    let smooth = |s: Statistic| {
        Smooth::new(inner)
            .with_clean(false)
            .with_repetitions(3)
            .with_noise(Noise::Given(zeros.clone()))
            .with_statistic(s)
            .attribute(&probe, x.clone(), &targets)
            .unwrap()
            .values
    };
    assert_close(
        "mean",
        smooth(Statistic::Mean),
        plain.values.clone(),
        tol::EXACT,
    );
    assert_close(
        "mean of squares",
        smooth(Statistic::MeanOfSquares),
        plain.values.clone().square(),
        tol::EXACT,
    );
    let variance = smooth(Statistic::Variance);
    let scale = values(plain.values.square())
        .1
        .iter()
        .fold(0f32, |m, v| m.max(*v));
    let worst = values(variance).1.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(worst <= 1e-5 * scale, "variance of equal passes: {worst:e}");
}
