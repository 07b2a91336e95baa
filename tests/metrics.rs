//! Explanation-quality metrics against pytorch-grad-cam, TorchCAM, Xplique
//! and TorchRay's rules on the ResNet-18 fixture
//! (`$BURN_EXPLAINABLE_FIXTURES/metrics`, described in its README): the
//! maps, targets, percentiles, steps, boxes and debug cases all come from
//! the files.
#![cfg(feature = "resnet")]

mod common;

use burn::prelude::*;
use burn_explainable::methods::Baseline;
use burn_explainable::metrics::{
    CamMultImage, CausalFidelity, PointingGame, Road, RoadOrder, box_masks, causal_counts,
    causal_order, linear_impute, percentile_threshold, road_keep,
};
use burn_explainable::models::resnet::{ResNet, ResNetConfig};
use burn_explainable::{Probe, Targets};
use common::{Npz, assert_close, device, fixtures_dir, values};

/// Scores, score changes, curves and AUCs: relative 1e-4 of each array's
/// max |value| (measured on flex: at most 1e-5 of it, on every array).
const REL: f32 = 1e-4;
/// Imputed images: absolute 1e-5 (the README: any solver to a relative
/// residual 1e-8).
const ABS_IMPUTED: f32 = 1e-5;

fn fixture() -> Npz {
    Npz::open(fixtures_dir().join("metrics").join("resnet18_metrics.npz"))
}

/// The generator's configuration (`manifest.json`).
fn config() -> serde_json::Value {
    let path = fixtures_dir().join("metrics").join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["config"].clone()
}

/// The map names (`map.<m>` keys).
fn map_names(r: &Npz) -> Vec<String> {
    let names: Vec<String> = r
        .keys()
        .into_iter()
        .filter_map(|k| k.strip_prefix("map.").map(String::from))
        .collect();
    assert!(!names.is_empty(), "{} has no map.* arrays", r.name);
    names
}

fn model(device: &Device) -> ResNet {
    let classes = Npz::resnet_fixture("resnet18_reference.npz")
        .get("logits")
        .shape[1];
    ResNet::load(
        &ResNetConfig::resnet18(classes),
        fixtures_dir().join("resnet").join("resnet18.safetensors"),
        device,
    )
    .unwrap()
}

/// Asserts `|actual − expected| ≤ rel · max |expected|` (NaN only where
/// NaN, the maximum over the finite values).
fn assert_rel<const D: usize>(what: &str, actual: Tensor<D>, expected: Tensor<D>, rel: f32) {
    let (_, e) = values(expected.clone());
    let scale = e
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, v| m.max(v.abs()));
    assert_abs(what, actual, expected, rel * scale);
}

/// Asserts `max |actual − expected| ≤ tol` (absolute), NaN only where NaN.
fn assert_abs<const D: usize>(what: &str, actual: Tensor<D>, expected: Tensor<D>, tol: f32) {
    let (sa, a) = values(actual);
    let (se, e) = values(expected);
    assert_eq!(sa, se, "{what}: shape");
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        let ok = if y.is_nan() {
            x.is_nan()
        } else {
            (x - y).abs() <= tol
        };
        assert!(
            ok,
            "{what}: at flat index {i} got {x}, expected {y} (tolerance {tol:e})"
        );
    }
}

fn assert_equal<const D: usize>(what: &str, actual: Tensor<D>, expected: Tensor<D>) {
    assert_abs(what, actual, expected, 0.0);
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn cam_mult_image_matches_pytorch_grad_cam_and_torchcam() {
    let device = device();
    let model = model(&device);
    let probe = Probe::new(&model);
    let r = fixture();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let logits = r.indices("targets");
    let probabilities = r.indices("targets").softmax();
    for m in map_names(&r) {
        let maps = r.tensor::<4>(&format!("map.{m}"), &device);
        let key = |k: &str| r.tensor::<2>(&format!("{k}.{m}"), &device);
        let p = CamMultImage::new()
            .evaluate(&probe, x.clone(), &probabilities, &maps)
            .unwrap();
        assert_rel(
            "score.prob",
            p.before.clone(),
            r.tensor("score.prob", &device),
            REL,
        );
        assert_rel(&m, p.change(), key("pgc.cam_mult_change"), REL);
        assert_rel(&m, p.absolute_drop(), key("pgc.drop_in_confidence"), REL);
        assert_equal(&m, p.increase(), key("pgc.increase_in_confidence"));
        assert_rel(&m, p.relative_drop(), key("torchcam.avg_drop"), REL);
        assert_equal(&m, p.increase(), key("torchcam.conf_increase"));
        // TorchCAM's summary of column n: the mean over the batch.
        let summary = |k: &str| r.tensor::<1>(&format!("{k}.{m}"), &device);
        let mean = |t: Tensor<2>| t.mean_dim(0).squeeze_dim::<1>(0);
        assert_rel(
            &m,
            mean(p.relative_drop()),
            summary("torchcam.summary_avg_drop"),
            REL,
        );
        assert_rel(
            &m,
            mean(p.increase()),
            summary("torchcam.summary_conf_increase"),
            REL,
        );
        let l = CamMultImage::new()
            .with_rows_per_pass(3)
            .evaluate(&probe, x.clone(), &logits, &maps)
            .unwrap();
        assert_rel(
            "score.logit",
            l.before.clone(),
            r.tensor("score.logit", &device),
            REL,
        );
        assert_rel(&m, l.change(), key("pgc.cam_mult_change_logit"), REL);
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn deletion_and_insertion_match_xplique() {
    let device = device();
    let model = model(&device);
    let probe = Probe::new(&model);
    let r = fixture();
    let c = config();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let [_, channels, h, w] = x.dims();
    let steps = c["causal_steps"].as_u64().unwrap() as usize;
    let max_fraction = c["causal_max_percentage_perturbed"].as_f64().unwrap();
    let baseline = c["causal_baseline"].as_f64().unwrap();
    let counts: Vec<usize> = r
        .get("causal.counts")
        .i64
        .iter()
        .map(|&v| v as usize)
        .collect();
    assert_eq!(
        causal_counts(h * w, steps, max_fraction),
        counts,
        "causal.counts"
    );

    // The debug case: the inputs of one step, which fix the order's tie rule.
    let debug = &c["debug_causal"];
    let (b, n, k) = (
        debug["b"].as_u64().unwrap() as usize,
        debug["n"].as_u64().unwrap() as usize,
        debug["step_index"].as_u64().unwrap() as usize,
    );
    let name = debug["map"].as_str().unwrap();
    let map = r.get(&format!("map.{name}"));
    let pixels = h * w;
    let map = &map.f32[(b * map.shape[1] + n) * pixels..][..pixels];
    let order = causal_order(map);
    let inputs = Npz::resnet_fixture("inputs.npz");
    let image = &inputs.get("x").f32[b * channels * pixels..][..channels * pixels];
    let mut deleted = image.to_vec();
    let mut inserted = vec![baseline as f32; channels * pixels];
    for &p in &order[..counts[k]] {
        for ch in 0..channels {
            deleted[ch * pixels + p] = baseline as f32;
            inserted[ch * pixels + p] = image[ch * pixels + p];
        }
    }
    assert_eq!(
        deleted,
        r.get("debug.causal.deletion_input").f32,
        "deletion step input"
    );
    assert_eq!(
        inserted,
        r.get("debug.causal.insertion_input").f32,
        "insertion step input"
    );

    for m in map_names(&r) {
        let maps = r.tensor::<4>(&format!("map.{m}"), &device);
        for (mode, metric) in [
            ("deletion", CausalFidelity::deletion()),
            ("insertion", CausalFidelity::insertion()),
        ] {
            let metric = metric
                .with_steps(steps)
                .with_max_fraction(max_fraction)
                .with_baseline(Baseline::Constant(baseline));
            for (score, targets, curve, auc) in [
                ("prob", r.indices("targets").softmax(), "prob", "auc"),
                ("logit", r.indices("targets"), "logit", "auc_logit"),
            ] {
                let what = format!("{mode} {score} {m}");
                let result = metric.evaluate(&probe, x.clone(), &targets, &maps).unwrap();
                assert_eq!(result.counts, counts, "{what}: counts");
                assert_rel(
                    &what,
                    result.scores,
                    r.tensor(&format!("{mode}.{curve}.{m}"), &device),
                    REL,
                );
                assert_rel(
                    &what,
                    result.auc,
                    r.tensor(&format!("{mode}.{auc}.{m}"), &device),
                    REL,
                );
            }
        }
    }
}

/// The threshold and the removed pixels of every map, percentile and
/// direction are exact; the debug keep masks and imputed images match
/// pytorch-grad-cam's, and the small imputer case its `NoisyLinearImputer`.
#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn road_thresholds_masks_and_imputation_match_pytorch_grad_cam() {
    let r = fixture();
    let c = config();
    let percentiles: Vec<f64> = r
        .get("road.percentiles")
        .i64
        .iter()
        .map(|&p| p as f64)
        .collect();
    let directions = [
        ("morf", RoadOrder::MostRelevantFirst),
        ("lerf", RoadOrder::LeastRelevantFirst),
    ];
    for m in map_names(&r) {
        let maps = r.get(&format!("map.{m}"));
        let pixels = maps.shape[2] * maps.shape[3];
        for (dir, order) in directions {
            let thresholds = &r.get(&format!("road.{dir}_threshold.{m}")).f32;
            let removed = &r.get(&format!("road.{dir}_removed.{m}")).i64;
            for (i, map) in maps.f32.chunks_exact(pixels).enumerate() {
                let values: Vec<f32> = match order {
                    RoadOrder::MostRelevantFirst => map.to_vec(),
                    RoadOrder::LeastRelevantFirst => map.iter().map(|v| 1.0 - v).collect(),
                };
                for (j, &p) in percentiles.iter().enumerate() {
                    let at = i * percentiles.len() + j;
                    let what = format!("{dir} {m} map {i} percentile {p}");
                    assert_eq!(percentile_threshold(&values, p), thresholds[at], "{what}");
                    let keep = road_keep(map, p, order);
                    let gone = keep.iter().filter(|&&k| !k).count();
                    assert_eq!(gone as i64, removed[at], "{what}: removed pixels");
                }
            }
        }
    }

    let debug = &c["debug_road"];
    let (b, n) = (
        debug["b"].as_u64().unwrap() as usize,
        debug["n"].as_u64().unwrap() as usize,
    );
    let p = debug["percentile"].as_f64().unwrap();
    let maps = r.get(&format!("map.{}", debug["map"].as_str().unwrap()));
    let [h, w] = [maps.shape[2], maps.shape[3]];
    let map = &maps.f32[(b * maps.shape[1] + n) * h * w..][..h * w];
    let inputs = Npz::resnet_fixture("inputs.npz");
    let x = inputs.get("x");
    let channels = x.shape[1];
    let image = &x.f32[b * channels * h * w..][..channels * h * w];
    let device = device();
    for (dir, order) in directions {
        let keep = road_keep(map, p, order);
        let expected = &r.get(&format!("debug.road_{dir}.keep")).f32;
        let ours: Vec<f32> = keep.iter().map(|&k| f32::from(u8::from(k))).collect();
        assert_eq!(&ours, expected, "debug {dir} keep mask");
        let imputed = linear_impute(image, channels, [h, w], &keep);
        assert_abs(
            &format!("debug {dir} imputed"),
            Tensor::<3>::from_data(TensorData::new(imputed, [channels, h, w]), &device),
            r.tensor(&format!("debug.road_{dir}.imputed"), &device),
            ABS_IMPUTED,
        );
    }
    let small = r.get("debug.imputer_small.x");
    let [sc, sh, sw] = [small.shape[0], small.shape[1], small.shape[2]];
    let keep: Vec<bool> = r
        .get("debug.imputer_small.keep")
        .f32
        .iter()
        .map(|&k| k > 0.5)
        .collect();
    let out = linear_impute(&small.f32, sc, [sh, sw], &keep);
    assert_abs(
        "debug.imputer_small.out",
        Tensor::<3>::from_data(TensorData::new(out, [sc, sh, sw]), &device),
        r.tensor("debug.imputer_small.out", &device),
        ABS_IMPUTED,
    );
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn road_matches_pytorch_grad_cam() {
    let device = device();
    let model = model(&device);
    let probe = Probe::new(&model);
    let r = fixture();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let targets = r.indices("targets").softmax();
    let percentiles: Vec<f64> = r
        .get("road.percentiles")
        .i64
        .iter()
        .map(|&p| p as f64)
        .collect();
    // pytorch-grad-cam's values were made with noise 0 (the README).
    let road = Road::new(percentiles).with_noise(0.0);
    for m in map_names(&r) {
        let maps = r.tensor::<4>(&format!("map.{m}"), &device);
        let result = road.evaluate(&probe, x.clone(), &targets, &maps).unwrap();
        let key = |k: &str| r.tensor::<3>(&format!("{k}.{m}"), &device);
        let before = result.before.clone().unsqueeze_dim::<3>(2);
        assert_rel(
            &m,
            result.most_relevant_first.clone(),
            key("pgc.road_morf"),
            REL,
        );
        assert_rel(
            &m,
            result.least_relevant_first.clone(),
            key("pgc.road_lerf"),
            REL,
        );
        assert_rel(
            &m,
            result.most_relevant_first.clone() + before.clone(),
            key("road.morf_prob"),
            REL,
        );
        assert_rel(
            &m,
            result.least_relevant_first.clone() + before,
            key("road.lerf_prob"),
            REL,
        );
        assert_rel(
            &m,
            result.combined(),
            r.tensor(&format!("pgc.road_combined.{m}"), &device),
            REL,
        );
        // With pytorch-grad-cam's default noise (its draws come from torch's
        // global generator and cannot be replayed): our noise moves the
        // scores, by no more than a few times what pytorch-grad-cam's moved
        // them on these maps.
        if r.has(&format!("pgc.road_morf_noise0.01.{m}")) {
            let noisy = road
                .clone()
                .with_noise(0.01)
                .evaluate(&probe, x.clone(), &targets, &maps)
                .unwrap();
            let largest = |t: Tensor<3>| values(t.abs().max()).1[0];
            for (dir, with, without) in [
                (
                    "morf",
                    noisy.most_relevant_first,
                    result.most_relevant_first.clone(),
                ),
                (
                    "lerf",
                    noisy.least_relevant_first,
                    result.least_relevant_first.clone(),
                ),
            ] {
                let theirs = largest(
                    r.tensor::<3>(&format!("pgc.road_{dir}_noise0.01.{m}"), &device)
                        - key(&format!("pgc.road_{dir}")),
                );
                let ours = largest(with - without);
                println!(
                    "{m} {dir}: noise 0.01 moves the scores by {ours:e} here, {theirs:e} in pytorch-grad-cam"
                );
                assert!(
                    ours > 0.0 && ours <= 4.0 * theirs,
                    "{m} {dir}: {ours:e} vs {theirs:e}"
                );
            }
        }
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn pointing_game_matches_torchray() {
    let device = device();
    let r = fixture();
    let tolerance = config()["pointing_tolerance"].as_f64().unwrap();
    let boxes_array = r.get("pointing.boxes");
    let [batch, units] = [boxes_array.shape[0], boxes_array.shape[1]];
    let boxes: Vec<[usize; 4]> = boxes_array
        .i64
        .chunks_exact(4)
        .map(|b| [b[0] as usize, b[1] as usize, b[2] as usize, b[3] as usize])
        .collect();
    for m in map_names(&r) {
        let maps = r.tensor::<4>(&format!("map.{m}"), &device);
        let [_, _, h, w] = maps.dims();
        let masks = box_masks(&boxes, [batch, units], [h, w], &device).unwrap();
        let game = PointingGame::new().with_tolerance(tolerance);
        let result = game.evaluate(&maps, &masks).unwrap();
        // The fixture stores (x, y) = (column, row).
        let points: Vec<i64> = result
            .points
            .iter()
            .flat_map(|p| [p[1] as i64, p[0] as i64])
            .collect();
        assert_eq!(
            points,
            r.get(&format!("pointing.point.{m}")).i64,
            "{m}: points"
        );
        let hits = |t: Tensor<2>| values(t).1.iter().map(|&v| v as i64).collect::<Vec<_>>();
        assert_eq!(
            hits(result.hits),
            r.get(&format!("pointing.hit.{m}")).i64,
            "{m}: hits"
        );
        let inside = game
            .clone()
            .with_tolerance(0.0)
            .evaluate(&maps, &masks)
            .unwrap();
        assert_eq!(
            hits(inside.hits),
            r.get(&format!("pointing.hit_inside.{m}")).i64,
            "{m}: hits without tolerance"
        );
        // Energy: relative 1e-6 (float32 maps summed in float64); NaN stays NaN.
        let expected = r.tensor::<2>(&format!("pointing.energy.{m}"), &device);
        assert_rel(&format!("{m}: energy"), result.energy, expected, 1e-6);
    }
}

/// Errors name what is wrong instead of returning a wrong number.
#[test]
fn metric_errors_are_named() {
    use burn_explainable::Error;
    use burn_explainable::testing::TinyNet;
    let device = device();
    let model = TinyNet::new(&device);
    let probe = Probe::new(&model);
    let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
    let targets = Targets::top_k(1);
    let maps = Tensor::<4>::ones([2, 1, 8, 8], &device);
    let wrong = Tensor::<4>::ones([2, 2, 8, 8], &device);
    let shape = |e: Error| matches!(e, Error::Shape { .. });
    let config = |e: Error| matches!(e, Error::InvalidConfig { .. });
    assert!(shape(
        CamMultImage::new()
            .evaluate(&probe, x.clone(), &targets, &wrong)
            .unwrap_err()
    ));
    assert!(shape(
        CausalFidelity::deletion()
            .evaluate(&probe, x.clone(), &targets, &wrong)
            .unwrap_err()
    ));
    assert!(config(
        CausalFidelity::deletion()
            .with_steps(0)
            .evaluate(&probe, x.clone(), &targets, &maps)
            .unwrap_err()
    ));
    assert!(config(
        CausalFidelity::insertion()
            .with_max_fraction(1.5)
            .evaluate(&probe, x.clone(), &targets, &maps)
            .unwrap_err()
    ));
    assert!(config(
        CamMultImage::new()
            .with_rows_per_pass(0)
            .evaluate(&probe, x.clone(), &targets, &maps)
            .unwrap_err()
    ));
    assert!(config(
        Road::new([101.0])
            .evaluate(&probe, x.clone(), &targets, &maps)
            .unwrap_err()
    ));
    assert!(config(
        Road::new([50.0])
            .with_noise(-1.0)
            .evaluate(&probe, x.clone(), &targets, &maps)
            .unwrap_err()
    ));
    let nan = maps.clone().mul_scalar(f32::NAN);
    assert!(matches!(
        CamMultImage::new()
            .evaluate(&probe, x.clone(), &targets, &nan)
            .unwrap_err(),
        Error::NonFinite { .. }
    ));
    assert!(matches!(
        CausalFidelity::deletion()
            .evaluate(&probe, x, &Targets::each([99]), &maps)
            .unwrap_err(),
        Error::TargetOutOfRange { .. }
    ));
    // The pointing game: shapes, boxes, negative maps.
    assert!(shape(
        PointingGame::new().evaluate(&maps, &wrong).unwrap_err()
    ));
    assert!(config(
        PointingGame::new()
            .evaluate(&maps.clone().neg(), &maps)
            .unwrap_err()
    ));
    assert!(config(
        box_masks(&[[0, 0, 9, 1]; 2], [2, 1], [8, 8], &device).unwrap_err()
    ));
    assert!(shape(
        box_masks(&[[0, 0, 2, 2]], [2, 1], [8, 8], &device).unwrap_err()
    ));
}

/// Rows `b..b + 1` of a `[B, ...]` tensor.
fn row<const D: usize>(t: &Tensor<D>, b: usize) -> Tensor<D> {
    t.clone().narrow(0, b, 1)
}

/// Every metric gives the batch's numbers one sample at a time and in any
/// chunking of its perturbed copies (up to float32 differences between
/// batch sizes).
#[test]
fn metrics_do_not_depend_on_batching() {
    use burn_explainable::testing::TinyNet;
    let device = device();
    let model = TinyNet::new(&device);
    let probe = Probe::new(&model);
    let mut rng = common::Lcg(17);
    let x = rng.tensor([3, 3, 8, 8], -1.0, 1.0, &device);
    let maps = rng.tensor([3, 2, 8, 8], 0.0, 1.0, &device);
    let targets = Targets::top_k(2).softmax();
    let (probe, targets) = (&probe, &targets);
    let rel = 1e-5;
    // `metric(rows, x, maps)` gives the same numbers with 32 rows per pass,
    // with `rows` rows per pass, and one sample at a time.
    let invariant =
        |what: &str, rows: usize, metric: &dyn Fn(usize, Tensor<4>, Tensor<4>) -> Tensor<2>| {
            let batch = metric(32, x.clone(), maps.clone());
            let chunked = metric(rows, x.clone(), maps.clone());
            assert_close(&format!("{what}, rows {rows}"), chunked, batch.clone(), rel);
            let one_by_one = (0..3)
                .map(|b| metric(32, row(&x, b), row(&maps, b)))
                .collect();
            assert_close(
                &format!("{what}, per sample"),
                Tensor::cat(one_by_one, 0),
                batch,
                rel,
            );
        };
    invariant("cam × image", 1, &|rows, x, m| {
        CamMultImage::new()
            .with_rows_per_pass(rows)
            .evaluate(probe, x, targets, &m)
            .unwrap()
            .change()
    });
    for metric in [CausalFidelity::deletion(), CausalFidelity::insertion()] {
        invariant(&format!("{:?}", metric.mode), 5, &|rows, x, m| {
            let metric = metric.clone().with_steps(4).with_rows_per_pass(rows);
            metric.evaluate(probe, x, targets, &m).unwrap().auc
        });
    }
    invariant("ROAD", 3, &|rows, x, m| {
        Road::new([20.0, 60.0])
            .with_noise(0.0)
            .with_rows_per_pass(rows)
            .evaluate(probe, x, targets, &m)
            .unwrap()
            .combined()
    });
}

/// On the embedded demo model, Grad-CAM's maps are better than random ones
/// by every model-based metric: deleting their pixels first makes the
/// class probability fall faster, inserting them first makes it rise
/// faster, and ROAD's combined score is higher.
#[test]
fn grad_cam_beats_a_random_map_on_the_demo_model() {
    use burn_explainable::demo::{shapes, shapes_resnet};
    use burn_explainable::models::resnet::ResNetTap;
    use burn_explainable::preprocess::imagenet_normalize;
    use burn_explainable::{GradCam, Pipeline};
    let device = device();
    let model = shapes_resnet(&device).unwrap();
    let test = shapes(12, 96, 20_261_202, &device).unwrap();
    let x = imagenet_normalize(test.images.clone());
    let labels: Vec<Vec<i64>> = test.labels.iter().map(|&l| vec![l as i64]).collect();
    let targets = Targets::from_rows(&labels).softmax();
    let probe = Probe::new(&model).at(ResNetTap::Layer3);
    let grad_cam = Pipeline::new(GradCam::new())
        .run(&probe, x.clone(), &targets)
        .unwrap()
        .maps;
    let random = common::Lcg(5).tensor(grad_cam.dims(), 0.0, 1.0, &device);
    let mean = |t: Tensor<2>| values(t.mean()).1[0];
    let evaluate = |metric: &CausalFidelity, maps: &Tensor<4>| {
        mean(
            metric
                .evaluate(&probe, x.clone(), &targets, maps)
                .unwrap()
                .auc,
        )
    };
    let deletion = CausalFidelity::deletion();
    let insertion = CausalFidelity::insertion();
    let (d_cam, d_random) = (evaluate(&deletion, &grad_cam), evaluate(&deletion, &random));
    let (i_cam, i_random) = (
        evaluate(&insertion, &grad_cam),
        evaluate(&insertion, &random),
    );
    assert!(
        d_cam < d_random,
        "deletion AUC: Grad-CAM {d_cam}, random {d_random}"
    );
    assert!(
        i_cam > i_random,
        "insertion AUC: Grad-CAM {i_cam}, random {i_random}"
    );
    let road = Road::new([10.0, 30.0, 50.0, 70.0, 90.0]);
    let combined = |maps: &Tensor<4>| {
        mean(
            road.evaluate(&probe, x.clone(), &targets, maps)
                .unwrap()
                .combined(),
        )
    };
    let (r_cam, r_random) = (combined(&grad_cam), combined(&random));
    assert!(
        r_cam > r_random,
        "ROAD combined: Grad-CAM {r_cam}, random {r_random}"
    );
}

/// Adebayo et al.'s cascading randomisation on the embedded demo model:
/// the gradient maps' rank correlation with the trained model's falls as
/// more layers are re-initialised, the trained model is left unchanged, and
/// a layer that does not exist or a fresh model of another shape is a named
/// error.
#[test]
fn saliency_fails_to_survive_cascading_randomisation() {
    use burn_explainable::demo::{shapes, shapes_resnet, shapes_resnet_config};
    use burn_explainable::metrics::ModelRandomization;
    use burn_explainable::preprocess::imagenet_normalize;
    use burn_explainable::{Error, Explainer, Saliency};
    let device = device();
    let model = shapes_resnet(&device).unwrap();
    // Seeded inside: every call returns the same initialisation.
    let fresh = || {
        device.seed(3);
        shapes_resnet_config().init(&device)
    };
    let test = shapes(4, 96, 20_261_203, &device).unwrap();
    let x = imagenet_normalize(test.images.clone());
    let labels: Vec<Vec<i64>> = test.labels.iter().map(|&l| vec![l as i64]).collect();
    let targets = Targets::from_rows(&labels);
    let probe = Probe::new(&model);
    let before = Saliency::new()
        .explain(&probe, x.clone(), &targets)
        .unwrap()
        .maps;

    let layers = model.cascade();
    let check = ModelRandomization::new(layers.clone());
    let result = check
        .evaluate(&probe, fresh, &Saliency::new(), x.clone(), &targets)
        .unwrap();
    assert_eq!(result.layers, layers);
    let per_layer = values(result.rank_correlation.mean_dims(&[1, 2])).1;
    let ssim = values(result.ssim.expect("2-D maps").mean_dims(&[1, 2])).1;
    println!("rank correlation per layer: {per_layer:?}");
    println!("SSIM per layer: {ssim:?}");
    let (first, last) = (per_layer[0], per_layer[per_layer.len() - 1]);
    assert!(
        last < first - 0.2,
        "rank correlation {first} after `fc`, {last} after every layer"
    );
    assert!(ssim[ssim.len() - 1] < ssim[0], "SSIM {ssim:?}");

    let after = Saliency::new()
        .explain(&probe, x.clone(), &targets)
        .unwrap()
        .maps;
    assert_close("the trained model's maps", after, before, 0.0);
    let unknown = ModelRandomization::new(["layer9"]);
    assert!(matches!(
        unknown
            .evaluate(&probe, fresh, &Saliency::new(), x.clone(), &targets)
            .unwrap_err(),
        Error::InvalidConfig { .. }
    ));
    let other = || shapes_resnet_config().with_num_classes(7).init(&device);
    assert!(matches!(
        ModelRandomization::new(["layer4.0"])
            .evaluate(&probe, other, &Saliency::new(), x, &targets)
            .unwrap_err(),
        Error::Shape { .. }
    ));
}
