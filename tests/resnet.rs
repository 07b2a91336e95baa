//! The ResNet family against torchvision, pytorch-grad-cam and captum, on
//! the seeded random-weight fixtures (`$BURN_EXPLAINABLE_FIXTURES/resnet`,
//! described in its README): forward taps and logits, raw Grad-CAM and
//! Grad-CAM++, pytorch-grad-cam's post-processed maps, input gradients.
#![cfg(feature = "resnet")]

mod common;

use std::path::PathBuf;

use burn_explainable::models::resnet::{BlockKind, ResNet, ResNetConfig, ResNetTap};
use burn_explainable::{
    ChannelReduction, Explainer, FullGrad, GradCam, GradCamPlusPlus, Pipeline, Probe, Saliency,
    ScoreCam,
};
use common::{
    Npz, assert_close, assert_gradients_close, device, fixtures_dir, pgc_postprocess, values,
};

/// Forward taps, logits, gradients and raw maps: relative 1e-4 of the
/// array's max |value| (the fixtures' suggestion).
const REL: f32 = 1e-4;
/// pytorch-grad-cam's post-processed `[0, 1]` maps: absolute.
const ABS_MAPS: f32 = 1e-4;
/// Faster-Score-CAM's largest difference from Score-CAM (post-processed
/// `[0, 1]` maps) with a quarter of the channels: measured 0.185 (ResNet-18,
/// layer3, 64 of 256 channels) and 0.201 (layer4, 128 of 512) on flex.
const FASTER_SCORE_CAM_BOUND: f32 = 0.25;

fn file(name: &str) -> PathBuf {
    fixtures_dir().join("resnet").join(name)
}

/// The fixture models: (weights file, reference file, architecture). The
/// architectures are the README's; the class count comes from the logits.
fn cases() -> Vec<(&'static str, &'static str, ResNetConfig)> {
    let classes = |reference: &str| Npz::resnet_fixture(reference).get("logits").shape[1];
    let r18 = ResNetConfig::resnet18(classes("resnet18_reference.npz"));
    let bottleneck = ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1])
        .with_groups(2)
        .with_width_per_group(16)
        .with_num_classes(classes("bottleneck_reference.npz"));
    vec![
        ("resnet18.safetensors", "resnet18_reference.npz", r18),
        (
            "bottleneck.safetensors",
            "bottleneck_reference.npz",
            bottleneck.clone(),
        ),
        ("bottleneck.pth", "bottleneck_reference.npz", bottleneck),
    ]
}

fn stage_tap(name: &str) -> ResNetTap {
    match name {
        "maxpool" => ResNetTap::Stem,
        "layer1" => ResNetTap::Layer1,
        "layer2" => ResNetTap::Layer2,
        "layer3" => ResNetTap::Layer3,
        "layer4" => ResNetTap::Layer4,
        other => panic!("no tap for {other}"),
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn logits_and_stage_outputs_match_torchvision() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    for (weights, reference, config) in cases() {
        let r = Npz::resnet_fixture(reference);
        let model = ResNet::load(&config, file(weights), &device).unwrap();
        let probe = Probe::new(&model);
        let logits = probe.forward(x.clone()).unwrap().flat();
        assert_close(
            &format!("{weights} logits"),
            logits,
            r.tensor("logits", &device),
            REL,
        );
        for stage in ["maxpool", "layer1", "layer2", "layer3", "layer4"] {
            let probe = Probe::new(&model).at(stage_tap(stage));
            let (_, a) = probe.activations(x.clone()).unwrap();
            assert_close(
                &format!("{weights} {stage}"),
                a,
                r.tensor(stage, &device),
                REL,
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn grad_cam_family_matches_pytorch_grad_cam() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, _, h, w] = x.dims();
    for (weights, reference, config) in cases() {
        let r = Npz::resnet_fixture(reference);
        let targets = r.indices("targets");
        let model = ResNet::load(&config, file(weights), &device).unwrap();
        let layers: Vec<String> = r
            .keys()
            .into_iter()
            .filter_map(|k| k.strip_prefix("raw_gradcam.").map(String::from))
            .collect();
        assert!(
            !layers.is_empty(),
            "{reference} has no raw_gradcam.* arrays"
        );
        for layer in layers {
            let probe = Probe::new(&model).at(stage_tap(&layer));
            let what = |m: &str| format!("{weights} {m}.{layer}");
            let expected = |k: &str| r.tensor::<4>(&format!("{k}.{layer}"), &device);

            let grad_cam = GradCam::new().explain(&probe, x.clone(), &targets).unwrap();
            assert_close(
                &what("scores"),
                grad_cam.scores.clone(),
                r.tensor("scores", &device),
                REL,
            );
            assert_close(
                &what("raw_gradcam"),
                grad_cam.maps.clone(),
                expected("raw_gradcam"),
                REL,
            );
            let post = pgc_postprocess(grad_cam.maps, [h, w]);
            let pgc = expected("pgc_gradcam");
            assert_close(&what("pgc_gradcam"), post.clone(), pgc.clone(), ABS_MAPS);
            // The maps pytorch-grad-cam leaves at zero are exactly zero here.
            // (Read back as floats: backends store booleans differently.)
            let zero_ref = pgc.max_dims(&[2, 3]).equal_elem(0.0).float();
            let zero_ours = post.max_dims(&[2, 3]).equal_elem(0.0).float();
            assert_eq!(
                values(zero_ours).1,
                values(zero_ref).1,
                "{}",
                what("all-zero maps")
            );

            let pp = GradCamPlusPlus::new()
                .explain(&probe, x.clone(), &targets)
                .unwrap();
            assert_close(
                &what("raw_gradcampp_noeps"),
                pp.maps,
                expected("raw_gradcampp_noeps"),
                REL,
            );
            let pp = GradCamPlusPlus::new()
                .with_epsilon(1e-6)
                .explain(&probe, x.clone(), &targets)
                .unwrap();
            assert_close(
                &what("raw_gradcampp"),
                pp.maps.clone(),
                expected("raw_gradcampp"),
                REL,
            );
            let post = pgc_postprocess(pp.maps, [h, w]);
            assert_close(
                &what("pgc_gradcampp"),
                post,
                expected("pgc_gradcampp"),
                ABS_MAPS,
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn input_gradients_match_torch_autograd() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    for (weights, reference, config) in cases() {
        let r = Npz::resnet_fixture(reference);
        let model = ResNet::load(&config, file(weights), &device).unwrap();
        let g = Probe::new(&model)
            .input_gradients(x.clone(), &r.indices("targets"), 16, false)
            .unwrap();
        let expected = r.tensor::<5>("input_grad", &device);
        let grads = g.gradients.reshape(expected.dims());
        assert_gradients_close(&format!("{weights} input_grad"), grads, expected);
        // captum's Saliency(abs=True), reduced over channels by max and by
        // mean: `Saliency` with those channel reductions.
        let probe = Probe::new(&model);
        for (key, reduction) in [
            ("captum_saliency_max", ChannelReduction::AbsMax),
            ("captum_saliency_mean", ChannelReduction::Mean),
        ] {
            let maps = Saliency::new()
                .with_reduction(reduction)
                .explain(&probe, x.clone(), &r.indices("targets"))
                .unwrap()
                .maps;
            let captum = r.tensor::<4>(key, &device);
            assert_gradients_close(
                &format!("{weights} {key}"),
                maps.unsqueeze_dim(2),
                captum.unsqueeze_dim(2),
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn pytorch_grad_cam_score_cam_and_full_grad() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, _, h, w] = x.dims();
    // Score-CAM scores the channels that are constant at the tap (dead after
    // the ReLU) with one forward pass of a zero input, where pytorch-grad-cam
    // ran one masked pass each: their scores are compared with its below.
    let mut dead_channels = 0;
    // Each model once (the `.pth` copy only tests loading): Score-CAM runs
    // a forward pass per channel and sample.
    for (weights, reference, config) in cases()
        .into_iter()
        .filter(|c| c.0.ends_with(".safetensors"))
    {
        let r = Npz::resnet_fixture(reference);
        let targets = r.indices("targets");
        let model = ResNet::load(&config, file(weights), &device).unwrap();
        let chunk = r.get("pgc_scorecam_batch_size").i64[0] as usize;
        let method = ScoreCam::pytorch_grad_cam().with_batch_size(chunk);
        let layers: Vec<String> = r
            .keys()
            .into_iter()
            .filter_map(|k| k.strip_prefix("raw_scorecam.").map(String::from))
            .collect();
        assert!(
            !layers.is_empty(),
            "{reference} has no raw_scorecam.* arrays"
        );
        for layer in layers {
            let probe = Probe::new(&model).at(stage_tap(&layer));
            let what = |m: &str| format!("{weights} {m}.{layer}");
            let key = |k: &str| format!("{k}.{layer}");
            dead_channels += constant_channels(r.get(&layer));
            let m = method.masked_scores(&probe, x.clone(), &targets).unwrap();
            assert_close(
                &what("scorecam_scores"),
                m.masked.clone(),
                r.tensor(&key("scorecam_scores"), &device),
                REL,
            );
            // `explain` is `weigh(masked_scores(..))`.
            let e = method.weigh(m);
            let expected = |k: &str| r.tensor::<4>(&key(k), &device);
            assert_close(
                &what("raw_scorecam"),
                e.maps.clone(),
                expected("raw_scorecam"),
                REL,
            );
            let post = pgc_postprocess(e.maps, [h, w]);
            assert_close(
                &what("pgc_scorecam"),
                post,
                expected("pgc_scorecam"),
                ABS_MAPS,
            );
        }
        let full_grad = Pipeline::new(FullGrad::pytorch_grad_cam())
            .run(&Probe::new(&model), x.clone(), &targets)
            .unwrap()
            .maps;
        assert_close(
            &format!("{weights} pgc_fullgrad"),
            full_grad,
            r.tensor("pgc_fullgrad", &device),
            ABS_MAPS,
        );
    }
    assert!(
        dead_channels > 0,
        "no (sample, channel) at the fixtures' Score-CAM taps is constant: the skipping of dead channels went untested"
    );
}

/// The (sample, channel) pairs of an activation `[B, K, ...spatial]` whose
/// values are all equal.
fn constant_channels(activation: &common::Array) -> usize {
    let positions: usize = activation.shape[2..].iter().product();
    activation
        .f32
        .chunks(positions)
        .filter(|c| c.iter().all(|&v| v == c[0]))
        .count()
}

/// Faster-Score-CAM, an approximation: pytorch-grad-cam's Score-CAM over
/// the quarter of the channels with the largest variance at each fixture
/// tap, against pytorch-grad-cam's full Score-CAM (`pgc_scorecam.*`). The
/// largest difference of the post-processed `[0, 1]` maps measured on the
/// fixtures is written in the bound's comment.
#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn faster_score_cam_error_on_the_fixtures() {
    let device = device();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, _, h, w] = x.dims();
    let (weights, reference, config) = cases().swap_remove(0);
    let r = Npz::resnet_fixture(reference);
    let targets = r.indices("targets");
    let model = ResNet::load(&config, file(weights), &device).unwrap();
    let chunk = r.get("pgc_scorecam_batch_size").i64[0] as usize;
    for layer in r
        .keys()
        .into_iter()
        .filter_map(|k| k.strip_prefix("pgc_scorecam.").map(String::from))
    {
        let channels = r.get(&layer).shape[1];
        let method = ScoreCam::pytorch_grad_cam()
            .with_batch_size(chunk)
            .with_top_channels(Some(channels / 4));
        let probe = Probe::new(&model).at(stage_tap(&layer));
        let maps = method.explain(&probe, x.clone(), &targets).unwrap().maps;
        let post = values(pgc_postprocess(maps, [h, w])).1;
        let expected = &r.get(&format!("pgc_scorecam.{layer}")).f32;
        let error = post
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "{weights} {layer}: top {} of {channels} channels, max |Δ| = {error:.3e}",
            channels / 4
        );
        assert!(
            error <= FASTER_SCORE_CAM_BOUND,
            "{weights} {layer}: Faster-Score-CAM differs from Score-CAM by {error:.3e}"
        );
    }
}
