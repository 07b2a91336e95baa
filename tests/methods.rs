//! The methods pytorch-grad-cam and captum ship beyond the keras-explainable
//! ones, against their outputs on the ResNet fixtures
//! (`$BURN_EXPLAINABLE_FIXTURES/methods`, described in its README): raw maps
//! and weights, and the peers' final maps. Models, inputs and targets are
//! those of `../resnet/`; every shape, tap and index comes from the files.
#![cfg(feature = "resnet")]

mod common;

use burn::prelude::*;
use burn_explainable::methods::Quadrature;
use burn_explainable::methods::{
    ablation_cam_weights, principal_projection, singular_values, xgrad_cam_weights,
};
use burn_explainable::models::resnet::{BlockKind, ResNet, ResNetConfig, ResNetTap};
use burn_explainable::{
    AblationCam, Attributor, Deconvolution, EigenCam, EigenGradCam, Explainer, GradCam,
    GradCamElementWise, GradientFilter, GuidedBackprop, GuidedGradCam, HiResCam, InputXGradient,
    IntegratedGradients, LayerCam, Noise, Occlusion, Pipeline, Probe, Saliency, Smooth, Statistic,
    Targets, XGradCam,
};
use common::{Npz, assert_close, device, fixtures_dir, pgc_postprocess, values};

/// Raw maps, weights and singular values: relative 1e-4 of the array's max
/// |value| (the fixture README's suggestion).
const REL: f32 = 1e-4;
/// pytorch-grad-cam's `[0, 1]` maps: absolute 1e-4.
const ABS_MAPS: f32 = 1e-4;

/// The fixture models by name, loaded from `../resnet/` (architectures as
/// in its README; the class count from the logits).
fn models(device: &Device) -> Vec<(&'static str, ResNet)> {
    let resnet = |f: &str| fixtures_dir().join("resnet").join(f);
    let classes = |reference: &str| Npz::resnet_fixture(reference).get("logits").shape[1];
    let r18 = ResNetConfig::resnet18(classes("resnet18_reference.npz"));
    let bottleneck = ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1])
        .with_groups(2)
        .with_width_per_group(16)
        .with_num_classes(classes("bottleneck_reference.npz"));
    vec![
        (
            "resnet18",
            ResNet::load(&r18, resnet("resnet18.safetensors"), device).unwrap(),
        ),
        (
            "bottleneck",
            ResNet::load(&bottleneck, resnet("bottleneck.safetensors"), device).unwrap(),
        ),
    ]
}

fn fixture(model: &str) -> Npz {
    Npz::open(
        fixtures_dir()
            .join("methods")
            .join(format!("{model}_methods.npz")),
    )
}

fn stage_tap(name: &str) -> ResNetTap {
    match name {
        "layer1" => ResNetTap::Layer1,
        "layer2" => ResNetTap::Layer2,
        "layer3" => ResNetTap::Layer3,
        "layer4" => ResNetTap::Layer4,
        other => panic!("no tap for {other}"),
    }
}

/// The layers a fixture has arrays for (`raw_xgradcam.<layer>`).
fn layers(r: &Npz) -> Vec<String> {
    let layers: Vec<String> = r
        .keys()
        .into_iter()
        .filter_map(|k| k.strip_prefix("raw_xgradcam.").map(String::from))
        .collect();
    assert!(
        !layers.is_empty(),
        "{} has no raw_xgradcam.* arrays",
        r.name
    );
    layers
}

/// The maps pytorch-grad-cam leaves at zero are exactly zero here too.
fn assert_same_zero_maps(what: &str, ours: Tensor<4>, reference: Tensor<4>) {
    // Read back as floats: backends store booleans differently.
    let zero = |t: Tensor<4>| values(t.max_dims(&[2, 3]).equal_elem(0.0).float()).1;
    assert_eq!(zero(ours), zero(reference), "{what}: all-zero maps");
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn gradient_cam_variants_match_pytorch_grad_cam() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, _, h, w] = x.dims();
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        for layer in layers(&r) {
            let probe = Probe::new(&model).at(stage_tap(&layer));
            let what = |m: &str| format!("{name} {m}.{layer}");
            let expected = |k: &str| r.tensor::<4>(&format!("{k}.{layer}"), &device);

            // XGrad-CAM's weights from the tap's activation and gradients.
            let t = probe.tap_gradients(x.clone(), &targets, 64).unwrap();
            let [b, k, th, tw] = t.activation.dims();
            let n = t.gradients.dims()[0] / b;
            let weights = xgrad_cam_weights(
                t.activation.reshape([b, 1, k, th * tw]),
                t.gradients.reshape([b, n, k, th * tw]),
                1e-7,
            );
            assert_close(
                &what("xgradcam_weights"),
                weights,
                r.tensor(&format!("xgradcam_weights.{layer}"), &device),
                REL,
            );

            let check = |key: &str, method: &dyn Explainer<ResNet, 4>| {
                let e = method.explain(&probe, x.clone(), &targets).unwrap();
                assert_close(&what("scores"), e.scores, r.tensor("scores", &device), REL);
                assert_close(
                    &what(&format!("raw_{key}")),
                    e.maps,
                    expected(&format!("raw_{key}")),
                    REL,
                );
                let post = Pipeline::pytorch_grad_cam(method)
                    .run(&probe, x.clone(), &targets)
                    .unwrap()
                    .maps;
                let pgc = expected(&format!("pgc_{key}"));
                assert_eq!(post.dims(), [b, n, h, w]);
                assert_close(
                    &what(&format!("pgc_{key}")),
                    post.clone(),
                    pgc.clone(),
                    ABS_MAPS,
                );
                assert_same_zero_maps(&what(key), post, pgc);
            };
            check("xgradcam", &XGradCam::new());
            check("layercam", &LayerCam::new());
            check("hirescam", &HiResCam::new());
            check("gradcamelementwise", &GradCamElementWise::new());
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn eigen_methods_match_pytorch_grad_cam_up_to_its_sign() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, _, h, w] = x.dims();
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        for layer in layers(&r) {
            let probe = Probe::new(&model).at(stage_tap(&layer));
            let what = |m: &str| format!("{name} {m}.{layer}");
            let key = |k: &str| format!("{k}.{layer}");

            // The terms each method projects, for the singular values.
            let t = probe.tap_gradients(x.clone(), &targets, 64).unwrap();
            let [b, k, th, tw] = t.activation.dims();
            let n = t.gradients.dims()[0] / b;
            let a = t.activation.reshape([b, 1, k, th * tw]);
            let g = t.gradients.reshape([b, n, k, th * tw]);
            let grad_cam_weights = g.clone().mean_dim(3);
            let terms = [
                ("eigencam", a.clone().repeat_dim(1, n)),
                ("eigengradcam", g * a.clone()),
                ("gradcam_eigensmooth", grad_cam_weights * a),
            ];
            for (m, terms) in terms {
                assert_close(
                    &what(&format!("{m}_singular_values")),
                    singular_values(terms.clone()).unwrap(),
                    r.tensor(&key(&format!("{m}_singular_values")), &device),
                    REL,
                );
                let (_, s1) = principal_projection(terms).unwrap();
                let all = r.tensor::<3>(&key(&format!("{m}_singular_values")), &device);
                assert_close(
                    &what(&format!("{m} s1")),
                    s1,
                    all.narrow(2, 0, 1).squeeze_dim(2),
                    REL,
                );
            }

            let methods: [(&str, &dyn Explainer<ResNet, 4>); 3] = [
                ("eigencam", &EigenCam::new()),
                ("eigengradcam", &EigenGradCam::new()),
                (
                    "gradcam_eigensmooth",
                    &GradCam::new().with_eigen_smooth(true),
                ),
            ];
            for (m, method) in methods {
                let e = method.explain(&probe, x.clone(), &targets).unwrap();
                assert_close(&what("scores"), e.scores, r.tensor("scores", &device), REL);
                // Ours is canonical (largest entry positive); the fixture
                // says where pytorch-grad-cam's LAPACK sign is the other one.
                let sign = r
                    .tensor::<2>(&key(&format!("{m}_pgc_sign")), &device)
                    .reshape([b, n, 1, 1]);
                let raw = e.maps * sign;
                assert_close(
                    &what(&format!("raw_{m}")),
                    raw.clone(),
                    r.tensor(&key(&format!("raw_{m}")), &device),
                    REL,
                );
                let post = pgc_postprocess(raw, [h, w]);
                let pgc = r.tensor::<4>(&key(&format!("pgc_{m}")), &device);
                assert_close(
                    &what(&format!("pgc_{m}")),
                    post.clone(),
                    pgc.clone(),
                    ABS_MAPS,
                );
                assert_same_zero_maps(&what(m), post, pgc);
            }
        }
    }
}

/// Eigen-CAM ignores the targets: every unit of a sample gets one map.
#[test]
fn eigen_cam_gives_every_unit_the_same_map() {
    let device = device();
    let model = burn_explainable::testing::TinyNet::new(&device);
    let probe = Probe::new(&model).at(burn_explainable::testing::TinyNet::FEATURES);
    let x = common::Lcg(3).tensor::<4>([2, 3, 8, 8], -1.0, 1.0, &device);
    let e = EigenCam::new()
        .explain(&probe, x, &Targets::indices([[0, 1], [2, 0]]))
        .unwrap();
    let first = e.maps.clone().narrow(1, 0, 1);
    assert_close("unit 1 vs unit 0", e.maps.narrow(1, 1, 1), first, 0.0);
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn ablation_cam_matches_pytorch_grad_cam() {
    // The weights `(s − s_k) / s` are a small difference of two logits over
    // a score as small as 0.015: float32 cancellation alone puts the stored
    // weights 8.3e-5 (relative) from float64 and the final maps 8.1e-5
    // (absolute), and our own rounding adds as much (fixture README), so
    // the weights, raw and final maps use 5e-4; the scores 1e-4.
    const CANCELLING: f32 = 5e-4;
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, _, h, w] = x.dims();
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        let chunk = r.get("pgc_ablationcam_batch_size").i64[0] as usize;
        for layer in layers(&r) {
            let probe = Probe::new(&model).at(stage_tap(&layer));
            let what = |m: &str| format!("{name} {m}.{layer}");
            let expected = |k: &str| format!("{k}.{layer}");
            let method = AblationCam::new().with_batch_size(chunk);
            let a = method.ablations(&probe, x.clone(), &targets).unwrap();
            assert_close(
                &what("scores"),
                a.scores.clone(),
                r.tensor("scores", &device),
                REL,
            );
            assert_close(
                &what("ablationcam_scores"),
                a.ablated.clone(),
                r.tensor(&expected("ablationcam_scores"), &device),
                REL,
            );
            assert_close(
                &what("ablationcam_weights"),
                ablation_cam_weights(a.scores, a.ablated),
                r.tensor(&expected("ablationcam_weights"), &device),
                CANCELLING,
            );
            let e = method.explain(&probe, x.clone(), &targets).unwrap();
            assert_close(
                &what("raw_ablationcam"),
                e.maps,
                r.tensor(&expected("raw_ablationcam"), &device),
                CANCELLING,
            );
            let post = Pipeline::pytorch_grad_cam(&method)
                .run(&probe, x.clone(), &targets)
                .unwrap()
                .maps;
            let pgc = r.tensor::<4>(&expected("pgc_ablationcam"), &device);
            assert_eq!(post.dims()[2..], [h, w]);
            assert_close(
                &what("pgc_ablationcam"),
                post.clone(),
                pgc.clone(),
                CANCELLING,
            );
            assert_same_zero_maps(&what("ablationcam"), post, pgc);
        }
    }
}

/// The generator's constants (`manifest.json`).
fn constants() -> serde_json::Value {
    let path = fixtures_dir().join("methods").join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["constants"].clone()
}

fn sizes(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not a list"))
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// Attributions made of input gradients at `x` (Input×Gradient, the guided
/// methods): relative 1e-4 on flex and tch, where this float32 implementation
/// switches no ReLU gate that PyTorch's does; on the others another
/// convolution summation order can switch a gate with a margin of 1e-7
/// (fixture README) and move one patch by ~1e-3, so the input-gradient rule
/// of the ResNet suite applies (99.9% of the elements within 1e-4, all
/// within 5e-3).
fn assert_input_attribution_close(what: &str, actual: Tensor<5>, expected: Tensor<5>) {
    if common::reference_tolerances() {
        assert_close(what, actual, expected, REL);
    } else {
        common::assert_gradients_close(what, actual, expected);
    }
}

/// Per-channel attributions `[B·N, C, H, W]` as the fixtures' `[B, N, C, H, W]`.
fn per_unit(values: Tensor<4>, like: &Tensor<5>) -> Tensor<5> {
    values.reshape(like.dims())
}

/// Methods that average input gradients at new points (Integrated
/// Gradients, SmoothGrad): float32 rounding can switch a ReLU gate there,
/// and the fixture's own float32 run differs from float64 by up to 3.5e-3
/// relative on 3.5% of the elements (README), so: relative L2 error ≤ 1e-2
/// and largest error ≤ 5e-2 · max |reference| (its suggestion; a textbook
/// trapezoid rule is off by 6.7e-2 in L2, a wrong noise order by far more).
fn assert_path_close(what: &str, actual: Tensor<5>, expected: Tensor<5>) {
    let (sa, a) = values(actual);
    let (se, e) = values(expected);
    assert_eq!(sa, se, "{what}: shape");
    let norm = e.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
    let err = a
        .iter()
        .zip(&e)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let scale = e.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(&e)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err / norm <= 1e-2,
        "{what}: relative L2 error {:e}",
        err / norm
    );
    assert!(
        worst <= 5e-2 * scale,
        "{what}: largest error {worst:e} against max |ref| {scale:e}"
    );
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn input_x_gradient_matches_captum() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        let probe = Probe::new(&model);
        let expected = r.tensor::<5>("captum_inputxgradient", &device);
        let a = InputXGradient::new()
            .attribute(&probe, x.clone(), &targets)
            .unwrap();
        assert_close(
            &format!("{name} scores"),
            a.scores,
            r.tensor("scores", &device),
            REL,
        );
        assert_input_attribution_close(
            &format!("{name} captum_inputxgradient"),
            per_unit(a.values, &expected),
            expected,
        );
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn occlusion_matches_captum() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let c = constants();
    let occlusion = Occlusion::new(
        sizes(&c["occlusion_window"]),
        sizes(&c["occlusion_strides"]),
    )
    .with_baseline(c["occlusion_baseline"].as_f64().unwrap());
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        let probe = Probe::new(&model);
        let expected = r.tensor::<5>("captum_occlusion", &device);
        let a = occlusion.attribute(&probe, x.clone(), &targets).unwrap();
        assert_close(
            &format!("{name} captum_occlusion"),
            per_unit(a.values, &expected),
            expected,
            REL,
        );
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn integrated_gradients_match_captum() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        let probe = Probe::new(&model);
        for (key, quadrature) in [
            ("riemann_trapezoid", Quadrature::RiemannTrapezoid),
            ("gausslegendre", Quadrature::GaussLegendre),
        ] {
            let what = |k: &str| format!("{name} {k}");
            // The points and steps captum used, to the float32 bit.
            let alphas = &r.get(&format!("ig_{key}_alphas")).f32;
            let steps = alphas.len();
            let (ours, step_sizes) = quadrature.points(steps).unwrap();
            assert_eq!(&ours, alphas, "{}", what("alphas"));
            assert_eq!(
                step_sizes,
                r.get(&format!("ig_{key}_step_sizes")).f32,
                "{}",
                what("step sizes")
            );
            let ig = IntegratedGradients::new()
                .with_steps(steps)
                .with_quadrature(quadrature);
            let (a, delta) = ig
                .attribute_with_delta(&probe, x.clone(), &targets)
                .unwrap();
            let expected = r.tensor::<5>(&format!("captum_ig_{key}"), &device);
            let ours = per_unit(a.values, &expected);
            // Deltas to 1e-3 · Σ|attribution[b, n]| (README: not relative to
            // s(x) − s(0), which is about 0 for some targets).
            let mass = expected
                .clone()
                .abs()
                .sum_dims_squeeze::<2, usize>(&[2, 3, 4]);
            let (_, d) = values(delta);
            let (_, dref) = values(r.tensor::<2>(&format!("captum_ig_{key}_delta"), &device));
            let (_, m) = values(mass);
            for i in 0..d.len() {
                assert!(
                    (d[i] - dref[i]).abs() <= 1e-3 * m[i],
                    "{}: delta {} vs {} (Σ|a| = {})",
                    what(&format!("captum_ig_{key}_delta")),
                    d[i],
                    dref[i],
                    m[i]
                );
            }
            assert_path_close(&what(&format!("captum_ig_{key}")), ours, expected);
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn smoothgrad_variants_match_captum_noise_tunnel() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let noise = Npz::open(fixtures_dir().join("methods").join("noise.npz"));
    let all = noise.get("noise");
    // One given tensor per noisy pass, `[R, B, C, H, W]` → R × `[B, C, H, W]`.
    let per_pass: usize = all.shape[1..].iter().product();
    let given: Vec<TensorData> = all
        .f32
        .chunks_exact(per_pass)
        .map(|c| TensorData::new(c.to_vec(), all.shape[1..].to_vec()))
        .collect();
    let passes = given.len();
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        let probe = Probe::new(&model);
        for (key, statistic) in [
            ("smoothgrad", Statistic::Mean),
            ("smoothgrad_sq", Statistic::MeanOfSquares),
            ("vargrad", Statistic::Variance),
        ] {
            // captum's NoiseTunnel(Saliency(abs=False)): every pass noisy.
            let smooth = Smooth::new(Saliency::new().with_filter(GradientFilter::Identity))
                .with_clean(false)
                .with_repetitions(passes)
                .with_noise(Noise::Given(given.clone()))
                .with_statistic(statistic);
            let expected = r.tensor::<5>(key, &device);
            let a = smooth.attribute(&probe, x.clone(), &targets).unwrap();
            assert_path_close(
                &format!("{name} {key}"),
                per_unit(a.values, &expected),
                expected,
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn guided_methods_match_captum() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let layer = constants()["guided_gradcam_layer"]
        .as_str()
        .unwrap()
        .to_string();
    for (name, model) in models(&device) {
        let r = fixture(name);
        let targets = r.indices("targets");
        let probe = Probe::new(&model).at(stage_tap(&layer));
        let what = |k: &str| format!("{name} {k}");
        let expected = r.tensor::<5>("captum_guidedbackprop", &device);
        let a = GuidedBackprop::new()
            .attribute(&probe, x.clone(), &targets)
            .unwrap();
        assert_close(&what("scores"), a.scores, r.tensor("scores", &device), REL);
        assert_input_attribution_close(
            &what("captum_guidedbackprop"),
            per_unit(a.values, &expected),
            expected,
        );
        let expected = r.tensor::<5>("captum_deconvolution", &device);
        let a = Deconvolution::new()
            .attribute(&probe, x.clone(), &targets)
            .unwrap();
        assert_input_attribution_close(
            &what("captum_deconvolution"),
            per_unit(a.values, &expected),
            expected,
        );
        // captum's LayerGradCam(relu_attributions=True): the map Guided
        // Grad-CAM upsamples.
        let cam = GradCam::new().explain(&probe, x.clone(), &targets).unwrap();
        assert_close(
            &what(&format!("captum_layergradcam.{layer}")),
            cam.maps.clamp_min(0.0),
            r.tensor(&format!("captum_layergradcam.{layer}"), &device),
            REL,
        );
        let expected = r.tensor::<5>(&format!("captum_guidedgradcam.{layer}"), &device);
        let a = GuidedGradCam::new()
            .attribute(&probe, x.clone(), &targets)
            .unwrap();
        assert_input_attribution_close(
            &what(&format!("captum_guidedgradcam.{layer}")),
            per_unit(a.values, &expected),
            expected,
        );
    }
}
