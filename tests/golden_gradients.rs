//! Score-CAM, input gradients and FullGrad against keras-explainable's own
//! output (`BURN_EXPLAINABLE_GOLDEN`, shapes from the files).

mod common;

use burn::prelude::*;
use burn_explainable::methods::full_grad_maps;
use burn_explainable::{
    Explainer, Explanation, Filter, FullGrad, Pipeline, Probe, Saliency, ScoreCam, Targets,
};
use common::{GoldenNet, GoldenTap, Npz, assert_close, device, tol};

fn check(npz: &Npz, key: &str, e: &Explanation<4>, device: &Device) {
    common::check_golden(npz, key, e, 1.0, device);
}

fn inputs(device: &Device) -> (Tensor<4>, Targets, Npz) {
    let npz = Npz::golden("inputs.npz");
    (npz.channels_first("x", device), npz.indices("indices"), npz)
}

#[test]
fn score_cam_raw_and_explained() {
    let device = device();
    let (x, t, inputs) = inputs(&device);
    let model = GoldenNet::model_a(&device);
    for (file, tap) in [
        ("cams_model_a.npz", GoldenTap::Relu2),
        ("cams_model_a_relu1.npz", GoldenTap::Relu1),
    ] {
        let g = Npz::golden(file);
        let probe = Probe::new(&model).at(tap);
        check(
            &g,
            "scorecam",
            &ScoreCam::new().explain(&probe, x.clone(), &t).unwrap(),
            &device,
        );
    }
    let probe = Probe::new(&model).at(GoldenTap::Relu2);
    let explained = Pipeline::new(ScoreCam::new())
        .with_batch_size(2)
        .run(&probe, x, &t)
        .unwrap();
    check(
        &Npz::golden("explain_model_a.npz"),
        "scorecam",
        &explained,
        &device,
    );

    let xn: Tensor<4> = inputs.channels_first("x_nonsquare", &device);
    let tn = inputs.indices("indices_nonsquare");
    let e = Pipeline::new(ScoreCam::new()).run(&probe, xn, &tn).unwrap();
    check(
        &Npz::golden("nonsquare_model_a.npz"),
        "explain_scorecam",
        &e,
        &device,
    );
}

#[test]
fn score_cam_does_not_depend_on_its_batch_size() {
    let device = device();
    let (x, t, _) = inputs(&device);
    let model = GoldenNet::model_a(&device);
    let probe = Probe::new(&model).at(GoldenTap::Relu1);
    let channels = probe.activations(x.clone()).unwrap().1.dims()[1];
    let batch = x.dims()[0];
    let reference = ScoreCam::new()
        .with_batch_size(1)
        .explain(&probe, x.clone(), &t)
        .unwrap();
    // All channels of one sample, all pairs at once, and an uneven size.
    for size in [channels, batch * channels, 5] {
        let e = ScoreCam::new()
            .with_batch_size(size)
            .explain(&probe, x.clone(), &t)
            .unwrap();
        assert_close(
            &format!("batch {size}"),
            e.maps,
            reference.maps.clone(),
            tol::EXACT,
        );
    }
}

#[test]
fn gradients_model_a_and_b() {
    let device = device();
    let (x, t, inputs) = inputs(&device);
    let a = GoldenNet::model_a(&device);
    let e = Saliency::new()
        .explain(&Probe::new(&a), x.clone(), &t)
        .unwrap();
    check(
        &Npz::golden("gradient_model_a.npz"),
        "gradients",
        &e,
        &device,
    );
    let e = Pipeline::new(Saliency::new())
        .with_batch_size(2)
        .run(&Probe::new(&a), x.clone(), &t)
        .unwrap();
    check(
        &Npz::golden("explain_model_a.npz"),
        "gradients",
        &e,
        &device,
    );
    let xn: Tensor<4> = inputs.channels_first("x_nonsquare", &device);
    let tn = inputs.indices("indices_nonsquare");
    let e = Pipeline::new(Saliency::new())
        .run(&Probe::new(&a), xn, &tn)
        .unwrap();
    check(
        &Npz::golden("nonsquare_model_a.npz"),
        "explain_gradients",
        &e,
        &device,
    );

    let b = GoldenNet::model_b(&device);
    let e = Saliency::new().explain(&Probe::new(&b), x, &t).unwrap();
    check(&Npz::golden("model_b.npz"), "gradients", &e, &device);
}

#[test]
fn full_grad_one_unit() {
    let device = device();
    let (x, _, npz) = inputs(&device);
    let g = Npz::golden("gradient_model_a.npz");
    // `full_gradients_idx0` explains the first index column only.
    let [b, _] = g.get("full_gradients_idx0.logits").shape[..] else {
        panic!("logits are [B, N]")
    };
    let indices = npz.get("indices");
    let first: Vec<i64> = indices
        .i64
        .chunks(indices.shape[1])
        .map(|row| row[0])
        .collect();
    let t0 = Targets::from_data(TensorData::new(first, [b, 1]));
    let model = GoldenNet::model_a(&device);
    let e = FullGrad::new()
        .explain(&Probe::new(&model), x, &t0)
        .unwrap();
    check(&g, "full_gradients_idx0", &e, &device);
}

/// keras-explainable sums all units before differentiating, giving one map
/// per sample. Gradients are linear in the score, so that map is our
/// FullGrad combination of per-unit gradients summed over units.
fn summed_units_full_grad(
    probe: &Probe<GoldenNet, 4>,
    x: Tensor<4>,
    t: &Targets,
) -> (Tensor<2>, Tensor<4>) {
    let g = probe.input_gradients(x.clone(), t, 16, true).unwrap();
    let batch = x.dims()[0];
    let sum_units = |t: Tensor<4>| {
        let [rows, c, h, w] = t.dims();
        t.reshape([batch, rows / batch, c * h * w])
            .sum_dim(1)
            .reshape([batch, c, h, w])
    };
    let biases: Vec<(Tensor<1>, Tensor<4>)> = g
        .biases
        .into_iter()
        .map(|(b, gr)| (b, sum_units(gr)))
        .collect();
    let maps = full_grad_maps(
        x,
        sum_units(g.gradients),
        biases,
        Filter::AbsoluteNormalize,
        burn_explainable::methods::ChannelReduction::Mean,
    )
    .unwrap();
    (g.scores, maps)
}

#[test]
fn full_grad_model_b_with_layer_epsilon() {
    let device = device();
    let (x, t, _) = inputs(&device);
    let model = GoldenNet::model_b(&device);
    let g = Npz::golden("model_b.npz");
    // The effective BatchNorm bias the model reports is the layer-epsilon one.
    let bn = model.bn1.as_ref().unwrap();
    assert_close(
        "bn1 effective bias",
        burn_explainable::effective_bias(bn, None),
        g.tensor::<1>("bn1_bias_layer_eps", &device),
        tol::GOLDEN,
    );
    let probe = Probe::new(&model);
    let (scores, maps) = summed_units_full_grad(&probe, x.clone(), &t);
    let e = Explanation::new(scores, Tensor::zeros([1, 1], &device), maps);
    check(&g, "full_gradients_bneps", &e, &device);
    let normalized = Explanation::new(
        e.scores.clone(),
        e.indices.clone(),
        Filter::Normalize.apply(e.maps.clone()),
    );
    check(&g, "explain_full_gradients_bneps", &normalized, &device);
}

#[test]
fn full_grad_explicit_biases_match_reported_ones() {
    let device = device();
    let (x, t, _) = inputs(&device);
    let model = GoldenNet::model_b(&device);
    let g = Npz::golden("model_b.npz");
    let probe = Probe::new(&model);
    let reported = FullGrad::new().explain(&probe, x.clone(), &t).unwrap();
    let bias = |c: &burn::nn::conv::Conv2d| c.bias.as_ref().unwrap().val();
    let explicit = FullGrad::new()
        .with_biases(vec![
            bias(&model.conv1),
            g.tensor::<1>("bn1_bias_layer_eps", &device),
            bias(&model.conv2),
        ])
        .explain(&probe, x, &t)
        .unwrap();
    assert_close("explicit biases", explicit.maps, reported.maps, tol::EXACT);
}
