//! Signals `[B, C, L]` and volumes `[B, C, D, H, W]` through every method,
//! combinator, filter and the driver; a 2-D method on H = 1 equals the 1-D
//! method, a 3-D method on D = 1 equals the 2-D method; resizing of every
//! rank against a direct (non-separable) reference.

mod common;

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Conv3d, Conv3dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d, PaddingConfig3d};
use burn::prelude::*;
use burn_explainable::filters::normalize;
use burn_explainable::resize::resize;
use burn_explainable::{
    AblationCam, Cam, Deconvolution, EigenCam, EigenGradCam, Error, Explainable, Explainer,
    FullGrad, GradCam, GradCamElementWise, GradCamPlusPlus, GuidedBackprop, GuidedGradCam,
    HiResCam, InputXGradient, IntegratedGradients, LayerCam, Occlusion, Output, Pipeline, Probe,
    Resize, Saliency, ScoreCam, Smooth, Statistic, Targets, Trace, Tta, XGradCam,
};
use common::{Lcg, assert_close, device, tol, values};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tap {
    Relu1,
    Relu2,
}

/// conv(3→4, bias) → ReLU → conv(4→5, bias) → ReLU → global average
/// pooling → linear(5→3), with 1-D, 2-D or 3-D convolutions (kernel 3 along
/// every spatial axis, zero "same" padding).
macro_rules! net {
    ($name:ident, $conv:ty, $rank:literal) => {
        #[derive(Module, Debug)]
        struct $name {
            conv1: $conv,
            conv2: $conv,
            fc: Linear,
        }

        impl Explainable<$rank> for $name {
            type Tap = Tap;
            fn forward_traced(&self, x: Tensor<$rank>, trace: &mut Trace<Tap, $rank>) -> Output {
                let bias = |c: &$conv| c.bias.as_ref().expect("bias").val();
                let z = trace.bias(self.conv1.forward(x), || bias(&self.conv1));
                let a = trace.relu(z);
                let a = trace.tap(Tap::Relu1, a);
                let z = trace.bias(self.conv2.forward(a), || bias(&self.conv2));
                let a = trace.relu(z);
                let a = trace.tap(Tap::Relu2, a);
                // One reduction over the flattened spatial axes: Burn 0.22.1's
                // wgpu backend gets `mean_dims` over three axes of a rank-5
                // tensor wrong.
                self.fc
                    .forward(a.flatten::<3>(2, $rank - 1).mean_dim(2).flatten::<2>(1, 2))
                    .into()
            }
            fn is_cut(&self, _: Tap) -> bool {
                true
            }
            fn cam_weights(&self, tap: Tap) -> Option<Tensor<2>> {
                (tap == Tap::Relu2).then(|| self.fc.weight.val())
            }
            fn check_input(&self, dims: &[usize]) -> Result<(), String> {
                if dims[1] == 3 {
                    Ok(())
                } else {
                    Err(format!("3 input channels, got {}", dims[1]))
                }
            }
        }
    };
}

net!(Net1, Conv1d, 3);
net!(Net2, Conv2d, 4);
net!(Net3, Conv3d, 5);

/// The three models, sharing weights so that on inputs with singleton
/// leading spatial axes they compute the same function: the 2-D kernels are
/// random, the 1-D kernels are their middle rows, and the 3-D kernels hold
/// them as their middle depth slice (the other slices are random: with zero
/// padding they only ever see padding when D = 1).
fn nets(device: &Device) -> (Net1, Net2, Net3) {
    let mut r = Lcg(11);
    let mut layer = |i: usize, o: usize| {
        let w2 = r.tensor([o, i, 3, 3], -0.6, 0.6, device);
        let w1 = w2
            .clone()
            .slice([0..o, 0..i, 1..2, 0..3])
            .reshape([o, i, 3]);
        let w3 = r
            .tensor([o, i, 3, 3, 3], -0.6, 0.6, device)
            .slice_assign([0..o, 0..i, 1..2, 0..3, 0..3], w2.clone().unsqueeze_dim(2));
        let b = r.tensor([o], -0.3, 0.3, device);
        let mut c1 = Conv1dConfig::new(i, o, 3)
            .with_padding(PaddingConfig1d::Explicit(1, 1))
            .init(device);
        let mut c2 = Conv2dConfig::new([i, o], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        let mut c3 = Conv3dConfig::new([i, o], [3, 3, 3])
            .with_padding(PaddingConfig3d::Explicit(1, 1, 1))
            .init(device);
        c1.weight = Param::from_tensor(w1);
        c2.weight = Param::from_tensor(w2);
        c3.weight = Param::from_tensor(w3);
        c1.bias = Some(Param::from_tensor(b.clone()));
        c2.bias = Some(Param::from_tensor(b.clone()));
        c3.bias = Some(Param::from_tensor(b));
        (c1, c2, c3)
    };
    let (a1, a2, a3) = layer(3, 4);
    let (b1, b2, b3) = layer(4, 5);
    let mut fc = LinearConfig::new(5, 3).init(device);
    fc.weight = Param::from_tensor(r.tensor([5, 3], -1.0, 1.0, device));
    fc.bias = Some(Param::from_tensor(r.tensor([3], -0.5, 0.5, device)));
    (
        Net1 {
            conv1: a1,
            conv2: b1,
            fc: fc.clone(),
        },
        Net2 {
            conv1: a2,
            conv2: b2,
            fc: fc.clone(),
        },
        Net3 {
            conv1: a3,
            conv2: b3,
            fc,
        },
    )
}

/// Every method and combinator, configured alike for every rank. The tta
/// scale keeps a singleton axis at 1 (⌊1.5 · 1⌋), so the equivalences hold
/// for it too.
fn methods<M: Explainable<D> + 'static, const D: usize>()
-> Vec<(&'static str, Box<dyn Explainer<M, D>>)> {
    vec![
        ("cam", Box::new(Cam::new())),
        ("gradcam", Box::new(GradCam::new())),
        ("gradcam++", Box::new(GradCamPlusPlus::new())),
        ("scorecam", Box::new(ScoreCam::new().with_batch_size(5))),
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
        (
            "ablationcam",
            Box::new(AblationCam::new().with_batch_size(3)),
        ),
        (
            "scorecam (pytorch-grad-cam)",
            Box::new(ScoreCam::pytorch_grad_cam().with_batch_size(5)),
        ),
        ("inputxgradient", Box::new(InputXGradient::new())),
        (
            "integrated gradients",
            Box::new(IntegratedGradients::new().with_steps(4)),
        ),
        ("occlusion", Box::new(occlusion::<D>())),
        ("guided backprop", Box::new(GuidedBackprop::new())),
        ("deconvolution", Box::new(Deconvolution::new())),
        ("guided gradcam", Box::new(GuidedGradCam::new())),
        (
            "vargrad(inputxgradient)",
            Box::new(
                Smooth::new(InputXGradient::new())
                    .with_repetitions(3)
                    .with_clean(false)
                    .with_statistic(Statistic::Variance)
                    .with_seed(5),
            ),
        ),
        (
            "smooth(gradients)",
            Box::new(
                Smooth::new(Saliency::new())
                    .with_repetitions(3)
                    .with_seed(5),
            ),
        ),
        (
            "tta(gradcam)",
            Box::new(Tta::new(GradCam::new()).with_scales(vec![1.5])),
        ),
        (
            "tta(smooth(gradcam))",
            Box::new(
                Tta::new(Smooth::new(GradCam::new()).with_repetitions(2)).with_scales(vec![1.5]),
            ),
        ),
    ]
}

/// Windows spanning every channel and one element along each spatial axis.
fn occlusion<const D: usize>() -> Occlusion {
    let window: Vec<usize> = std::iter::once(3).chain([1; 3]).take(D - 1).collect();
    Occlusion::new(window.clone(), window)
}

fn run<M: Explainable<D, Tap = Tap> + Module + 'static, const D: usize>(
    model: &M,
    x: Tensor<D>,
) -> Vec<(&'static str, Tensor<2>, Tensor<D>)> {
    let probe = Probe::new(model).at(Tap::Relu2);
    let targets = Targets::indices([[0, 2], [1, 0]]);
    methods::<M, D>()
        .into_iter()
        .map(|(name, m)| {
            let e = Pipeline::new(m)
                .run(&probe, x.clone(), &targets)
                .unwrap_or_else(|e| panic!("{name} on rank {D}: {e}"));
            (name, e.scores, e.maps)
        })
        .collect()
}

#[test]
fn every_method_runs_on_signals_and_volumes_with_maps_at_the_input_size() {
    let device = device();
    let (n1, _, n3) = nets(&device);
    let x1 = Lcg(1).tensor([2, 3, 11], -1.0, 1.0, &device);
    for (name, scores, maps) in run(&n1, x1) {
        assert_eq!(scores.dims(), [2, 2], "{name}");
        assert_eq!(maps.dims(), [2, 2, 11], "{name}");
    }
    let x3 = Lcg(2).tensor([2, 3, 4, 5, 6], -1.0, 1.0, &device);
    for (name, scores, maps) in run(&n3, x3) {
        assert_eq!(scores.dims(), [2, 2], "{name}");
        assert_eq!(maps.dims(), [2, 2, 4, 5, 6], "{name}");
        // Every method's default filter normalises each map over all three
        // spatial axes: a maximum of 1 per map, or 0 where a positive filter
        // left nothing.
        let max = maps.flatten::<3>(2, 4).max_dim(2).reshape([4]);
        let (_, m) = values(max);
        assert!(
            m.iter().all(|&v| (v - 1.0).abs() < 1e-5 || v == 0.0),
            "{name}: per-map maxima {m:?}"
        );
        assert!(m.contains(&1.0), "{name}: no map reaches 1: {m:?}");
    }
}

#[test]
fn a_2d_method_on_one_row_equals_the_1d_method() {
    let device = device();
    let (n1, n2, _) = nets(&device);
    let x2 = Lcg(3).tensor([2, 3, 1, 13], -1.0, 1.0, &device);
    let x1 = x2.clone().reshape([2, 3, 13]);
    for ((name, s2, m2), (_, s1, m1)) in run(&n2, x2).into_iter().zip(run(&n1, x1)) {
        assert_close(&format!("{name} scores"), s2, s1.clone(), tol::EXACT);
        assert_close(
            &format!("{name} maps"),
            m2.reshape([2, 2, 13]),
            m1,
            tol::EXACT,
        );
    }
}

#[test]
fn a_3d_method_on_one_slice_equals_the_2d_method() {
    let device = device();
    let (_, n2, n3) = nets(&device);
    let x3 = Lcg(4).tensor([2, 3, 1, 6, 7], -1.0, 1.0, &device);
    let x2 = x3.clone().reshape([2, 3, 6, 7]);
    for ((name, s3, m3), (_, s2, m2)) in run(&n3, x3).into_iter().zip(run(&n2, x2)) {
        assert_close(&format!("{name} scores"), s3, s2, tol::EXACT);
        assert_close(
            &format!("{name} maps"),
            m3.reshape([2, 2, 6, 7]),
            m2,
            tol::EXACT,
        );
    }
}

/// Linear interpolation with half-pixel centres written directly in N
/// dimensions: each output value is the weighted sum over the 2^r corners
/// of its source cell (no separable passes), in f64.
fn reference_resize(data: &[f32], dims: &[usize], size: &[usize]) -> Vec<f32> {
    let r = size.len();
    let (planes, spatial) = (dims[0] * dims[1], &dims[2..]);
    let in_len: usize = spatial.iter().product();
    let out_len: usize = size.iter().product();
    let mut out = Vec::with_capacity(planes * out_len);
    for p in 0..planes {
        let src = &data[p * in_len..(p + 1) * in_len];
        for o in 0..out_len {
            // Per axis: the lower source index, the upper one and the weight of the upper.
            let mut rem = o;
            let mut cells = vec![(0usize, 0usize, 0f64); r];
            for a in (0..r).rev() {
                let (i, n_in, n_out) = (rem % size[a], spatial[a], size[a]);
                rem /= size[a];
                let s = ((i as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
                let lo = (s.floor() as usize).min(n_in - 1);
                cells[a] = (lo, (lo + 1).min(n_in - 1), s - lo as f64);
            }
            let mut v = 0f64;
            for corner in 0..1usize << r {
                let (mut w, mut flat) = (1f64, 0usize);
                for (a, &(lo, hi, t)) in cells.iter().enumerate() {
                    let upper = corner >> a & 1 == 1;
                    w *= if upper { t } else { 1.0 - t };
                    flat = flat * spatial[a] + if upper { hi } else { lo };
                }
                v += w * src[flat] as f64;
            }
            out.push(v as f32);
        }
    }
    out
}

fn check_resize<const D: usize>(dims: [usize; D], size: &[usize], device: &Device) {
    let x = Lcg(dims.iter().product::<usize>() as u64).tensor(dims, -1.0, 1.0, device);
    let (_, data) = values(x.clone());
    let expected = reference_resize(&data, &dims, size);
    let mut out_dims = dims;
    out_dims[2..].copy_from_slice(size);
    let expected = Tensor::<D>::from_data(TensorData::new(expected, out_dims), device);
    let what = format!("resize {dims:?} to {size:?}");
    assert_close(&what, resize(x, size).unwrap(), expected, tol::EXACT);
}

#[test]
fn resize_of_every_rank_matches_a_direct_reference() {
    let device = device();
    check_resize([2, 3, 7], &[13], &device);
    check_resize([2, 3, 12], &[5], &device);
    check_resize([1, 2, 5, 6], &[9, 4], &device);
    check_resize([2, 1, 8, 3], &[3, 7], &device);
    check_resize([1, 2, 3, 4, 5], &[5, 7, 3], &device);
    check_resize([2, 1, 6, 2, 4], &[2, 5, 4], &device);
    check_resize([1, 1, 1, 3, 3], &[4, 3, 3], &device);
}

#[test]
fn filters_normalise_over_every_spatial_axis() {
    let device = device();
    let maps = Lcg(9).tensor([2, 3, 4, 5, 6], -1.0, 2.0, &device);
    let (_, v) = values(normalize(maps.clone()));
    let (_, raw) = values(maps);
    for (map, raw) in v.chunks(120).zip(raw.chunks(120)) {
        let (lo, hi) = raw
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        for (x, r) in map.iter().zip(raw) {
            assert!((x - (r - lo) / (hi - lo)).abs() < 1e-5);
        }
    }
}

#[test]
fn a_map_size_of_the_wrong_rank_or_a_rejected_input_is_an_error() {
    let device = device();
    let (n1, _, n3) = nets(&device);
    let x1 = Lcg(5).tensor([1, 3, 9], -1.0, 1.0, &device);
    let probe = Probe::new(&n1).at(Tap::Relu2);
    let e = Pipeline::new(GradCam::new())
        .with_resize(Resize::To(vec![4, 4]))
        .run(&probe, x1, &Targets::top_k(1));
    assert!(matches!(e, Err(Error::Shape { .. })), "{e:?}");

    let maps = Tensor::<5>::zeros([1, 1, 2, 2, 2], &device);
    assert!(matches!(resize(maps, &[4, 4]), Err(Error::Shape { .. })));

    // A volume with 2 channels where the model takes 3.
    let x3 = Tensor::<5>::zeros([1, 2, 3, 3, 3], &device);
    let e = GradCam::new().explain(&Probe::new(&n3).at(Tap::Relu2), x3, &Targets::top_k(1));
    assert!(matches!(e, Err(Error::InputRejected { .. })), "{e:?}");
}
