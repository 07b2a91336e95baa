//! Ranks every method by every quality metric, on the embedded demo model
//! (images) and on a small 1-D classifier trained in a few seconds
//! (signals), and draws the curves.
//!
//! ```text
//! cargo run --release --example evaluate [-- --out DIR --images N]
//! ```
//!
//! The images are the demo generator's sample set (`demo::shapes` with seed
//! 7: the four pictures in `assets/samples/` are among them), with the
//! object's mask as the pointing game's ground truth; the signals are
//! `demo::pulses` with the pulse's span. Every map explains the true class's
//! logit and is post-processed as `Pipeline` does (normalised to `[0, 1]`
//! at the input's size); the metrics watch the true class's probability, as
//! pytorch-grad-cam's metric examples do. A seeded random map is the
//! baseline every method should beat.
//!
//! Columns (↓ lower is better, ↑ higher is better):
//! - deletion / insertion: area under the probability curve as the most
//!   relevant pixels are removed / added first (`CausalFidelity`, 10 steps);
//! - ROAD: pytorch-grad-cam's combined score, percentiles 10 to 90;
//! - drop / increase: TorchCAM's Average Drop and Increase in Confidence
//!   of the input multiplied by the map (`CamMultImage`), in percent;
//! - pointing / energy: the map's maximum inside the object (TorchRay's
//!   15-pixel tolerance for images, none for signals) and the map's share
//!   on it, in percent;
//! - sanity: the rank correlation of the maps with the trained model's once
//!   every layer is re-initialised (`ModelRandomization`): a method whose
//!   maps survive the model's destruction does not explain the model.
//!
//! Writes `table.md`, `curves.png` (deletion and insertion curves per
//! method), `sanity.png` (rank correlation per randomised layer) and the
//! same two plots for the signals, in `--out` (default
//! `target/evaluate`).
//!
//! Options: `--out DIR`, `--images N` (default 16), `--backend NAME`
//! (default flex).

mod support;

use std::fmt::Write as _;
use std::path::PathBuf;

use burn::prelude::*;
use burn_explainable::demo::{
    PulseNet, PulseTap, pulses, shapes, shapes_resnet, shapes_resnet_config,
};
use burn_explainable::metrics::{
    CamMultImage, CausalFidelity, ModelRandomization, PointingGame, Road,
};
use burn_explainable::models::resnet::{ResNet, ResNetTap};
use burn_explainable::preprocess::imagenet_normalize;
use burn_explainable::{
    AblationCam, Cam, Deconvolution, EigenCam, EigenGradCam, Explainable, Explainer, FullGrad,
    GradCam, GradCamElementWise, GradCamPlusPlus, GuidedBackprop, GuidedGradCam, HiResCam,
    InputXGradient, IntegratedGradients, LayerCam, Occlusion, Pipeline, Probe, Saliency, ScoreCam,
    Smooth, Statistic, Targets, Tta, XGradCam,
};
use support::plot::{COLOURS, Panel, Series, save_chart};

type Failure = Box<dyn std::error::Error>;

/// One method's numbers.
struct Row {
    name: String,
    deletion: f32,
    insertion: f32,
    road: Option<f32>,
    drop: f32,
    increase: f32,
    pointing: f32,
    energy: f32,
    sanity: Option<Vec<f32>>,
    deletion_curve: Vec<f32>,
    insertion_curve: Vec<f32>,
}

/// The methods for a model, by name; `None` stands for the random map.
type Methods<M, const D: usize> = Vec<(&'static str, Option<Box<dyn Explainer<M, D>>>)>;

/// Every method, for images (at layer3 but CAM, see `image_tap`) or for
/// signals (at conv3; PulseNet does not route its ReLUs through the trace,
/// so the guided methods are left out there).
fn methods<M: Explainable<D> + 'static, const D: usize>(images: bool) -> Methods<M, D> {
    let occlusion = if images {
        Occlusion::new([3, 16, 16], [3, 8, 8])
    } else {
        Occlusion::new([1, 8], [1, 4])
    };
    let mut list: Methods<M, D> = vec![
        (
            if images { "CAM (layer4)" } else { "CAM" },
            Some(Box::new(Cam::new())),
        ),
        ("Grad-CAM", Some(Box::new(GradCam::new()))),
        ("Grad-CAM++", Some(Box::new(GradCamPlusPlus::new()))),
        ("XGrad-CAM", Some(Box::new(XGradCam::new()))),
        ("Layer-CAM", Some(Box::new(LayerCam::new()))),
        ("HiResCAM", Some(Box::new(HiResCam::new()))),
        (
            "Grad-CAM element-wise",
            Some(Box::new(GradCamElementWise::new())),
        ),
        ("Eigen-CAM", Some(Box::new(EigenCam::new()))),
        ("Eigen-Grad-CAM", Some(Box::new(EigenGradCam::new()))),
        ("Score-CAM", Some(Box::new(ScoreCam::new()))),
        ("Ablation-CAM", Some(Box::new(AblationCam::new()))),
        ("FullGrad", Some(Box::new(FullGrad::new()))),
        ("saliency", Some(Box::new(Saliency::new()))),
        ("Input×Gradient", Some(Box::new(InputXGradient::new()))),
        (
            "Integrated Gradients",
            Some(Box::new(IntegratedGradients::new())),
        ),
        ("Occlusion", Some(Box::new(occlusion))),
    ];
    if images {
        list.push(("Guided Backprop", Some(Box::new(GuidedBackprop::new()))));
        list.push(("Deconvolution", Some(Box::new(Deconvolution::new()))));
        list.push(("Guided Grad-CAM", Some(Box::new(GuidedGradCam::new()))));
    }
    list.push(("SmoothGrad", Some(Box::new(Smooth::new(Saliency::new())))));
    list.push(("SmoothGrad²", Some(Box::new(squares(Saliency::new())))));
    list.push(("VarGrad", Some(Box::new(variance(Saliency::new())))));
    list.push((
        "smooth Grad-CAM",
        Some(Box::new(Smooth::new(GradCam::new()))),
    ));
    list.push(("tta Grad-CAM", Some(Box::new(Tta::new(GradCam::new())))));
    if images {
        list.push(("tta saliency", Some(Box::new(Tta::new(Saliency::new())))));
    }
    list.push(("random map", None));
    list
}

/// CAM explains the pooling head's input (layer4); every other method
/// layer3, the demo model's explanation layer.
fn image_tap(name: &str) -> Option<ResNetTap> {
    name.starts_with("CAM").then_some(ResNetTap::Layer4)
}

/// SmoothGrad² around `inner`.
fn squares<E>(inner: E) -> Smooth<E> {
    Smooth::new(inner).with_statistic(Statistic::MeanOfSquares)
}

/// VarGrad around `inner`.
fn variance<E>(inner: E) -> Smooth<E> {
    Smooth::new(inner).with_statistic(Statistic::Variance)
}

/// What the evaluation needs of a model family.
struct Setting<'a, M: Explainable<D>, const D: usize> {
    probe: Probe<M, D>,
    input: Tensor<D>,
    labels: Targets,
    probabilities: Targets,
    masks: Tensor<D>,
    tolerance: f64,
    road: bool,
    layers: Vec<String>,
    fresh: &'a dyn Fn() -> burn_explainable::Result<M>,
    /// A method's own tap, where it is not the probe's.
    tap_for: fn(&str) -> Option<M::Tap>,
}

fn main() -> Result<(), Failure> {
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/evaluate");
    let mut images = 16;
    let mut backend = "flex".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().ok_or("--out needs a value")?.into(),
            "--images" => images = args.next().ok_or("--images needs a value")?.parse()?,
            "--backend" => backend = args.next().ok_or("--backend needs a value")?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    std::fs::create_dir_all(&out)?;
    let device = burn_explainable::backends::device(&backend)?;
    let mut report = String::new();

    // Images: the embedded demo model, explained at layer3 (its 96-pixel
    // inputs leave layer4 a 3×3 map).
    let model = shapes_resnet(&device)?;
    let data = shapes(images, 96, 7, &device)?;
    let rows: Vec<Vec<i64>> = data.labels.iter().map(|&l| vec![l as i64]).collect();
    let [n, size, _] = data.masks.dims();
    // The re-initialisation of the sanity check, seeded: reproducible tables.
    let fresh = || {
        device.seed(11);
        shapes_resnet_config().init(&device)
    };
    let setting = Setting {
        probe: Probe::new(&model).at(ResNetTap::Layer3),
        input: imagenet_normalize(data.images.clone()),
        labels: Targets::from_rows(&rows),
        probabilities: Targets::from_rows(&rows).softmax(),
        masks: data.masks.clone().reshape([n, 1, size, size]),
        tolerance: 15.0,
        road: true,
        layers: model.cascade(),
        fresh: &fresh,
        tap_for: image_tap,
    };
    eprintln!("images: {n} demo images of {size}×{size}, embedded ResNet");
    let table = evaluate(&setting, methods::<ResNet, 4>(true))?;
    writeln!(
        report,
        "## Images: {n} demo images, embedded ResNet, layer3\n"
    )?;
    report.push_str(&markdown(&table));
    plot(&table, &setting.layers, "images", &out)?;

    // Signals: a 1-D classifier trained here for a few seconds.
    eprintln!("signals: training PulseNet (300 steps)");
    let ad = device.clone().autodiff();
    let pulse_net = support::train::train(
        PulseNet::new(1, &ad),
        300,
        1e-2,
        |m: &PulseNet, x| m.forward(x),
        |step| {
            let p = pulses(32, 128, 1000 + step as u64, &ad).expect("valid sizes");
            (p.signals, p.labels)
        },
        |_, _| {},
    );
    let pulse_net = burn::module::Module::valid(&pulse_net);
    let test = pulses(images.max(8), 128, 7, &device)?;
    let rows: Vec<Vec<i64>> = test.labels.iter().map(|&l| vec![l as i64]).collect();
    let length = 128;
    let mut spans = vec![0f32; test.spans.len() * length];
    for (i, span) in test.spans.iter().enumerate() {
        spans[i * length + span.start..i * length + span.end].fill(1.0);
    }
    let fresh_pulses = || Ok(PulseNet::new(2, &device));
    let setting = Setting {
        probe: Probe::new(&pulse_net).at(PulseTap::Conv3),
        input: test.signals.clone(),
        labels: Targets::from_rows(&rows),
        probabilities: Targets::from_rows(&rows).softmax(),
        masks: Tensor::from_data(
            TensorData::new(spans, [test.spans.len(), 1, length]),
            &device,
        ),
        tolerance: 0.0,
        road: false,
        layers: ["fc", "conv3", "conv2", "conv1"].map(String::from).to_vec(),
        fresh: &fresh_pulses,
        tap_for: |_| None,
    };
    eprintln!("signals: {} pulses of {length} samples", test.spans.len());
    let table = evaluate(&setting, methods::<PulseNet, 3>(false))?;
    writeln!(
        report,
        "\n## Signals: {} pulses, PulseNet, conv3\n",
        test.spans.len()
    )?;
    report.push_str(&markdown(&table));
    plot(&table, &setting.layers, "signals", &out)?;

    println!("{report}");
    std::fs::write(out.join("table.md"), &report)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Every metric for every method.
fn evaluate<M, const D: usize>(
    s: &Setting<'_, M, D>,
    methods: Methods<M, D>,
) -> Result<Vec<Row>, Failure>
where
    M: Explainable<D> + burn::module::Module + 'static,
{
    let mut table = Vec::new();
    let total = methods.len();
    for (i, (name, method)) in methods.into_iter().enumerate() {
        support::progress(i, total);
        eprint!(" {name:<24}");
        let probe = match (s.tap_for)(name) {
            Some(tap) => s.probe.clone().at(tap),
            None => s.probe.clone(),
        };
        let maps = match &method {
            Some(m) => {
                Pipeline::new(&**m)
                    .run(&probe, s.input.clone(), &s.labels)?
                    .maps
            }
            None => {
                let dims = s.masks.dims();
                let count = dims.iter().product();
                let mut state = 0x9E37_79B9_7F4A_7C15u64;
                let values: Vec<f32> = (0..count)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1);
                        (state >> 40) as f32 / (1u64 << 24) as f32
                    })
                    .collect();
                Tensor::from_data(TensorData::new(values, dims), &s.input.device())
            }
        };
        let target = &s.probabilities;
        let deletion =
            CausalFidelity::deletion().evaluate(&s.probe, s.input.clone(), target, &maps)?;
        let insertion =
            CausalFidelity::insertion().evaluate(&s.probe, s.input.clone(), target, &maps)?;
        let road = if s.road {
            let road = Road::new([10.0, 30.0, 50.0, 70.0, 90.0]);
            Some(mean(
                road.evaluate(&s.probe, s.input.clone(), target, &maps)?
                    .combined(),
            ))
        } else {
            None
        };
        let change = CamMultImage::new().evaluate(&s.probe, s.input.clone(), target, &maps)?;
        let pointing = PointingGame::new()
            .with_tolerance(s.tolerance)
            .evaluate(&maps, &s.masks)?;
        let sanity = match &method {
            Some(m) => {
                let check = ModelRandomization::new(s.layers.clone());
                let r = check.evaluate(
                    &probe,
                    s.fresh,
                    &Pipeline::new(&**m),
                    s.input.clone(),
                    &s.labels,
                )?;
                let per_layer = values(r.rank_correlation);
                let samples = per_layer.len() / s.layers.len();
                Some(per_layer.chunks(samples).map(nan_mean).collect())
            }
            None => None,
        };
        table.push(Row {
            name: name.to_string(),
            deletion: mean(deletion.auc),
            insertion: mean(insertion.auc),
            road,
            drop: 100.0 * mean(change.relative_drop()),
            increase: 100.0 * mean(change.increase()),
            pointing: 100.0 * mean(pointing.hits),
            energy: 100.0 * nan_mean(&values(pointing.energy)),
            sanity,
            deletion_curve: curve(deletion.scores),
            insertion_curve: curve(insertion.scores),
        });
    }
    support::progress(total, total);
    eprintln!();
    Ok(table)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 values")
}

fn mean<const D: usize>(t: Tensor<D>) -> f32 {
    nan_mean(&values(t))
}

/// The mean of the finite values (a constant map has no rank correlation).
fn nan_mean(v: &[f32]) -> f32 {
    let finite: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        f32::NAN
    } else {
        finite.iter().sum::<f32>() / finite.len() as f32
    }
}

/// The batch's mean curve.
fn curve(scores: Tensor<3>) -> Vec<f32> {
    let [_, _, points] = scores.dims();
    values(scores.mean_dims(&[0, 1]).reshape([points]))
}

fn markdown(table: &[Row]) -> String {
    let mut s = String::from(
        "| method | deletion ↓ | insertion ↑ | ROAD ↑ | drop % ↓ | increase % ↑ | pointing % ↑ | energy % ↑ | sanity ρ ↓ |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in table {
        let road = r.road.map_or("—".into(), |v| format!("{v:.4}"));
        let sanity = r
            .sanity
            .as_ref()
            .and_then(|v| v.last())
            .map_or("—".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            s,
            "| {} | {:.4} | {:.4} | {road} | {:.1} | {:.1} | {:.1} | {:.1} | {sanity} |",
            r.name, r.deletion, r.insertion, r.drop, r.increase, r.pointing, r.energy
        );
    }
    s
}

/// A line's points.
type Points = Vec<(f32, f32)>;

fn plot(
    table: &[Row],
    layers: &[String],
    what: &str,
    out: &std::path::Path,
) -> Result<(), Failure> {
    let series = |f: &dyn Fn(&Row) -> Option<Points>| -> Vec<Series> {
        table
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                f(r).map(|points| Series {
                    name: r.name.clone(),
                    colour: COLOURS[i % COLOURS.len()],
                    points,
                })
            })
            .collect()
    };
    let along = |c: &[f32]| -> Vec<(f32, f32)> {
        let steps = (c.len() - 1).max(1) as f32;
        c.iter()
            .enumerate()
            .map(|(k, &v)| (k as f32 / steps, v))
            .collect()
    };
    let panels = [
        Panel {
            title: format!("{what}: deletion"),
            x_label: "fraction removed".into(),
            y_label: "probability".into(),
            x_range: (0.0, 1.0),
            series: series(&|r| Some(along(&r.deletion_curve))),
            x_ticks: None,
        },
        Panel {
            title: format!("{what}: insertion"),
            x_label: "fraction inserted".into(),
            y_label: "probability".into(),
            x_range: (0.0, 1.0),
            series: series(&|r| Some(along(&r.insertion_curve))),
            x_ticks: None,
        },
    ];
    save_chart(&panels, &out.join(format!("{what}_curves.png")))?;
    let steps = layers.len() as f32;
    let ticks = layers
        .iter()
        .enumerate()
        .filter(|(i, _)| layers.len() <= 5 || i % 2 == 0)
        .map(|(i, l)| ((i + 1) as f32, l.clone()))
        .collect();
    let panel = Panel {
        title: format!("{what}: cascading randomisation"),
        x_label: "randomised down to".into(),
        y_label: "rank correlation".into(),
        x_range: (0.0, steps),
        series: series(&|r| {
            r.sanity.as_ref().map(|v| {
                std::iter::once((0.0, 1.0))
                    .chain(v.iter().enumerate().map(|(i, &c)| ((i + 1) as f32, c)))
                    .collect()
            })
        }),
        x_ticks: Some(ticks),
    };
    save_chart(&[panel], &out.join(format!("{what}_sanity.png")))?;
    Ok(())
}
