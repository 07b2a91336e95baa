//! Explain a ResNet's or a ViT's predictions and write heatmap overlays as PNG.
//!
//! ```text
//! # The embedded demo model on the sample images, offline:
//! cargo run --release --example explain
//! # A torchvision checkpoint on your own image:
//! cargo run --release --example explain -- --weights resnet50.pth --arch resnet50 --image cat.jpg
//! # A torchvision ViT checkpoint:
//! cargo run --release --example explain -- --weights vit_b_16.pth --arch vit_b_16 --image cat.jpg
//! ```
//!
//! Options:
//! - `--method M`: `gradcam` (default), `gradcam++`, `scorecam`, `cam`,
//!   `xgradcam`, `layercam`, `hirescam`, `gradcam-elementwise`, `eigencam`,
//!   `eigengradcam`, `ablationcam`, `saliency`, `inputxgradient`,
//!   `integrated-gradients`, `occlusion`, `guided-backprop`, `deconvolution`,
//!   `guided-gradcam`, `fullgrad`, `rollout` (ViT), or a combinator in front
//!   of one: `smooth:gradcam`, `smoothgrad2:saliency`, `vargrad:saliency`,
//!   `tta:saliency`, `tta:smooth:gradcam`, …
//! - `--target T`: `top1` (default), `top3`, … or a class index
//! - `--layer L`: `layer4`, `layer3`, `layer2`, `layer1`, `stem`; by default
//!   `layer4` for a checkpoint and `layer3` for the demo model (its 96-pixel
//!   inputs leave `layer4` a 3×3 map); for a ViT `ln1:I` (block `I`'s
//!   `ln_1`, by default the last block's), `block:I` (its output) or `norm`
//! - `--weights FILE --arch NAME [--classes N]`: a torchvision `.pth` or
//!   `.safetensors` checkpoint and its architecture (`resnet18` … `resnet152`,
//!   `resnext50_32x4d`, `wide_resnet50_2`, …, `vit_b_16`, `vit_b_32`,
//!   `vit_l_16`, `vit_l_32`, `vit_h_14`), 1000 classes by default
//! - `--image FILE`: the image (repeatable); ImageNet preprocessing
//!   (shorter side 256, centre crop 224)
//! - `--out PATH`: the PNG to write (one image) or a folder
//!   (default `target/explain`)
//! - `--colormap jet|turbo|viridis` (default jet), `--alpha A` (default 0.5)
//! - `--backend flex|ndarray|wgpu|cuda` (default flex; the others need
//!   their Cargo feature, e.g. `--features wgpu`)

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn_explainable::demo::{SHAPE_CLASSES, shapes_resnet};
use burn_explainable::models::resnet::{ResNet, ResNetConfig, ResNetTap};
use burn_explainable::models::vit::{Vit, VitConfig, VitTap};
use burn_explainable::preprocess::imagenet_normalize;
use burn_explainable::vis::{
    Colormap, image_to_tensor, load_image, overlay, preprocess_imagenet, save_png,
};
use burn_explainable::{
    AblationCam, AttentionRollout, Cam, Deconvolution, EigenCam, EigenGradCam, Explainable,
    Explainer, FullGrad, GradCam, GradCamElementWise, GradCamPlusPlus, GuidedBackprop,
    GuidedGradCam, HiResCam, InputXGradient, IntegratedGradients, LayerCam, Occlusion, Pipeline,
    Probe, Saliency, ScoreCam, Smooth, Statistic, Targets, Tta, XGradCam,
};
use image::imageops::FilterType;

type Method<M> = Box<dyn Explainer<M, 4>>;
type Failure = Box<dyn std::error::Error>;

struct Args {
    method: String,
    target: String,
    layer: Option<String>,
    weights: Option<PathBuf>,
    arch: String,
    classes: usize,
    images: Vec<PathBuf>,
    out: Option<PathBuf>,
    colormap: Colormap,
    alpha: f32,
    backend: String,
}

fn parse_args() -> Result<Args, Failure> {
    let mut a = Args {
        method: "gradcam".into(),
        target: "top1".into(),
        layer: None,
        weights: None,
        arch: "resnet50".into(),
        classes: 1000,
        images: Vec::new(),
        out: None,
        colormap: Colormap::Jet,
        alpha: 0.5,
        backend: "flex".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--method" => a.method = value()?,
            "--target" => a.target = value()?,
            "--layer" => a.layer = Some(value()?),
            "--weights" => a.weights = Some(value()?.into()),
            "--arch" => a.arch = value()?,
            "--classes" => a.classes = value()?.parse()?,
            "--image" => a.images.push(value()?.into()),
            "--out" => a.out = Some(value()?.into()),
            "--alpha" => a.alpha = value()?.parse()?,
            "--backend" => a.backend = value()?,
            "--colormap" => {
                a.colormap = match value()?.as_str() {
                    "jet" => Colormap::Jet,
                    "turbo" => Colormap::Turbo,
                    "viridis" => Colormap::Viridis,
                    other => return Err(format!("unknown colormap {other}").into()),
                }
            }
            "-h" | "--help" => {
                println!("see the documentation at the top of examples/explain.rs");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (try --help)").into()),
        }
    }
    Ok(a)
}

/// A method from its name; `smooth:` and `tta:` wrap what follows.
/// `grid` is a ViT's patch grid (attention rollout needs it).
fn method<M: Explainable<4> + 'static>(
    spec: &str,
    grid: Option<usize>,
) -> Result<Method<M>, Failure> {
    if let Some(inner) = spec.strip_prefix("smooth:") {
        return Ok(Box::new(Smooth::new(method(inner, grid)?)));
    }
    if let Some(inner) = spec.strip_prefix("smoothgrad2:") {
        let smooth = Smooth::new(method(inner, grid)?).with_statistic(Statistic::MeanOfSquares);
        return Ok(Box::new(smooth));
    }
    if let Some(inner) = spec.strip_prefix("vargrad:") {
        let smooth = Smooth::new(method(inner, grid)?).with_statistic(Statistic::Variance);
        return Ok(Box::new(smooth));
    }
    if let Some(inner) = spec.strip_prefix("tta:") {
        return Ok(Box::new(Tta::new(method(inner, grid)?)));
    }
    Ok(match spec {
        "rollout" => match grid {
            Some(g) => Box::new(AttentionRollout::new(vec![g, g])),
            None => return Err("rollout needs a transformer (--arch vit_…)".into()),
        },
        "gradcam" => Box::new(GradCam::new()),
        "gradcam++" => Box::new(GradCamPlusPlus::new()),
        "scorecam" => Box::new(ScoreCam::new()),
        "cam" => Box::new(Cam::new()),
        "saliency" => Box::new(Saliency::new()),
        "fullgrad" => Box::new(FullGrad::new()),
        "xgradcam" => Box::new(XGradCam::new()),
        "layercam" => Box::new(LayerCam::new()),
        "hirescam" => Box::new(HiResCam::new()),
        "gradcam-elementwise" => Box::new(GradCamElementWise::new()),
        "eigencam" => Box::new(EigenCam::new()),
        "eigengradcam" => Box::new(EigenGradCam::new()),
        "ablationcam" => Box::new(AblationCam::new()),
        "inputxgradient" => Box::new(InputXGradient::new()),
        "integrated-gradients" => Box::new(IntegratedGradients::new()),
        // Windows of 1/8 of the image's side; see `Occlusion` for others.
        "occlusion" => Box::new(OcclusionEighths),
        "guided-backprop" => Box::new(GuidedBackprop::new()),
        "deconvolution" => Box::new(Deconvolution::new()),
        "guided-gradcam" => Box::new(GuidedGradCam::new()),
        other => return Err(format!("unknown method {other}").into()),
    })
}

/// Occlusion with 8 × 8 windows over the image, whatever its size.
struct OcclusionEighths;

impl<M: Explainable<4>> Explainer<M, 4> for OcclusionEighths {
    fn explain(
        &self,
        probe: &Probe<M, 4>,
        input: Tensor<4>,
        targets: &Targets,
    ) -> burn_explainable::Result<burn_explainable::Explanation<4>> {
        let [_, c, h, w] = input.dims();
        let (wh, ww) = (h.div_ceil(8), w.div_ceil(8));
        Occlusion::new([c, wh, ww], [c, wh, ww]).explain(probe, input, targets)
    }

    fn postprocessing(&self) -> burn_explainable::Postprocessing {
        <Occlusion as Explainer<M, 4>>::postprocessing(&Occlusion::new([1], [1]))
    }
}

/// Roughly how many rows a method pushes through the model for one image
/// with `units` targets and `channels` channels at the tap: the progress
/// bar's total.
fn expected_rows(spec: &str, units: usize, channels: usize) -> usize {
    for prefix in ["smooth:", "smoothgrad2:", "vargrad:"] {
        if let Some(inner) = spec.strip_prefix(prefix) {
            return 20 * expected_rows(inner, units, channels);
        }
    }
    if let Some(inner) = spec.strip_prefix("tta:") {
        return 8 * expected_rows(inner, units, channels);
    }
    match spec {
        // One masked copy per channel serves every unit.
        "scorecam" | "ablationcam" => 1 + channels,
        "integrated-gradients" => 1 + 50 * units,
        "occlusion" => 1 + 64,
        "cam" => 1,
        _ => 1 + units,
    }
}

fn vit_tap(layer: Option<&str>, layers: usize) -> Result<VitTap, Failure> {
    let block = |i: &str| -> Result<usize, Failure> {
        let i: usize = i.parse()?;
        if i >= layers {
            return Err(format!("the ViT has blocks 0..{layers}, not {i}").into());
        }
        Ok(i)
    };
    Ok(match layer {
        None => VitTap::Ln1(layers - 1),
        Some("norm") => VitTap::Norm,
        Some(l) => match l.split_once(':') {
            Some(("ln1", i)) => VitTap::Ln1(block(i)?),
            Some(("block", i)) => VitTap::Output(block(i)?),
            _ => return Err(format!("unknown ViT layer {l} (ln1:I, block:I, norm)").into()),
        },
    })
}

fn tap(layer: &str) -> Result<ResNetTap, Failure> {
    Ok(match layer {
        "stem" => ResNetTap::Stem,
        "layer1" => ResNetTap::Layer1,
        "layer2" => ResNetTap::Layer2,
        "layer3" => ResNetTap::Layer3,
        "layer4" => ResNetTap::Layer4,
        other => return Err(format!("unknown layer {other}").into()),
    })
}

fn targets(spec: &str) -> Result<Targets, Failure> {
    Ok(match spec.strip_prefix("top") {
        Some(k) => Targets::top_k(k.parse()?),
        None => Targets::indices([[spec.parse::<i64>()?]]),
    })
}

fn main() -> Result<(), Failure> {
    let args = parse_args()?;
    let device = burn_explainable::backends::device(&args.backend)?;
    let targets = targets(&args.target)?;
    if args.arch.starts_with("vit") {
        let Some(weights) = &args.weights else {
            return Err("--arch vit_… needs --weights (a torchvision ViT checkpoint)".into());
        };
        let config = VitConfig::from_name(&args.arch, args.classes)?;
        let model = Vit::load(&config, weights, &device)?;
        let tap = vit_tap(args.layer.as_deref(), model.encoder.layers.len())?;
        let explainer = method(&args.method, Some(model.grid()))?;
        let inputs = imagenet_inputs(&args, &device)?;
        return explain(&args, &model, tap, explainer, &targets, None, inputs);
    }

    // The model, the class names, and the inputs with their display images.
    let (model, names, inputs) = match &args.weights {
        Some(weights) => {
            let config = ResNetConfig::from_name(&args.arch, args.classes)?;
            let model = ResNet::load(&config, weights, &device)?;
            (model, None, imagenet_inputs(&args, &device)?)
        }
        None => {
            let model = shapes_resnet(&device)?;
            let images = if args.images.is_empty() {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/samples");
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()?;
                files.retain(|p| p.extension().is_some_and(|e| e == "png"));
                files.sort();
                files
            } else {
                args.images.clone()
            };
            let mut inputs = Vec::new();
            for path in images {
                let image = load_image(&path)?;
                let x = imagenet_normalize(image_to_tensor(&image, &device).unsqueeze_dim(0));
                // Shown three times larger: 96 pixels is small on screen.
                let (w, h) = image.dimensions();
                let shown = image::imageops::resize(&image, 3 * w, 3 * h, FilterType::CatmullRom);
                inputs.push((path, x, shown));
            }
            (model, Some(SHAPE_CLASSES.as_slice()), inputs)
        }
    };
    let default_layer = if args.weights.is_some() {
        "layer4"
    } else {
        "layer3"
    };
    let layer = args.layer.as_deref().unwrap_or(default_layer);
    let explainer = method(&args.method, None)?;
    explain(
        &args,
        &model,
        tap(layer)?,
        explainer,
        &targets,
        names,
        inputs,
    )
}

/// An image file's path, the model input `[1, 3, H, W]` and the image shown.
type Input = (PathBuf, Tensor<4>, image::RgbImage);

/// The `--image` files with torchvision's ImageNet preprocessing.
fn imagenet_inputs(args: &Args, device: &Device) -> Result<Vec<Input>, Failure> {
    if args.images.is_empty() {
        return Err("--weights needs at least one --image".into());
    }
    let mut inputs = Vec::new();
    for path in &args.images {
        let (x, shown) = preprocess_imagenet(&load_image(path)?, 256, 224, device)?;
        inputs.push((path.clone(), x, shown));
    }
    Ok(inputs)
}

/// Explains every input at `tap` and writes the overlays.
fn explain<M: Explainable<4> + Module>(
    args: &Args,
    model: &M,
    tap: M::Tap,
    explainer: Method<M>,
    targets: &Targets,
    names: Option<&[&str]>,
    inputs: Vec<Input>,
) -> Result<(), Failure> {
    let name = |c: usize| names.map_or(format!("class {c}"), |n| n[c].to_string());

    let rows = Arc::new(AtomicUsize::new(0));
    let seen = rows.clone();
    let probe = Probe::new(model).at(tap).on_pass(move |n| {
        seen.fetch_add(n, Ordering::Relaxed);
    });
    let out_dir = match &args.out {
        Some(p) if inputs.len() == 1 && p.extension().is_some() => None,
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("target/explain")),
    };
    if let Some(dir) = &out_dir {
        std::fs::create_dir_all(dir)?;
    }

    for (path, x, shown) in inputs {
        let logits = probe.forward(x.clone())?.flat();
        let probs = softmax(logits, 1);
        let (top, order) = probs.sort_descending_with_indices(1);
        let top: Vec<f32> = top.into_data().convert::<f32>().try_into_vec()?;
        let order: Vec<i64> = order.into_data().convert::<i64>().try_into_vec()?;
        println!(
            "{}:",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        for (p, c) in top.iter().zip(&order).take(3) {
            println!("  {:>6.2}%  {}", 100.0 * p, name(*c as usize));
        }

        // A progress bar for the methods that make many passes.
        let channels = if args.method.contains("scorecam") || args.method.contains("ablationcam") {
            probe.activations(x.clone())?.1.dims()[1]
        } else {
            0
        };
        let units = targets.units_per_sample().unwrap_or(1);
        let total = expected_rows(&args.method, units, channels);
        rows.store(0, Ordering::Relaxed);
        let done = std::sync::atomic::AtomicBool::new(false);
        let e = std::thread::scope(|s| {
            let bar = s.spawn(|| {
                if total < 64 {
                    return;
                }
                while !done.load(Ordering::Relaxed) {
                    support::progress(rows.load(Ordering::Relaxed), total);
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                support::progress(total, total);
                eprintln!();
            });
            let e = Pipeline::new(&explainer).run(&probe, x, targets);
            done.store(true, Ordering::Relaxed);
            bar.join().expect("progress thread");
            e
        })?;

        let scores: Vec<f32> = e.scores.into_data().convert::<f32>().try_into_vec()?;
        let indices: Vec<i64> = e.indices.into_data().convert::<i64>().try_into_vec()?;
        let [_, n, h, w] = e.maps.dims();
        for j in 0..n {
            let map = e.maps.clone().slice([0..1, j..j + 1]).reshape([h, w]);
            let image = overlay(&shown, map, args.colormap, args.alpha)?;
            let file = match (&out_dir, &args.out) {
                (None, Some(p)) => p.clone(),
                (Some(dir), _) => {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
                    let method = args.method.replace("++", "pp").replace(":", "-");
                    dir.join(format!("{stem}_{method}_{}.png", indices[j]))
                }
                (None, None) => unreachable!("a default folder is always set"),
            };
            save_png(&image, &file)?;
            println!(
                "  {} for {} (logit {:.3}) → {}",
                args.method,
                name(indices[j] as usize),
                scores[j],
                file.display()
            );
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}
