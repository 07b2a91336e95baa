//! Explaining a segmentation model: a small U-Net trained for a few seconds
//! on the synthetic shapes of `demo::shapes` (background + 4 shape classes),
//! then Grad-CAM of each image's predicted shape class summed over the
//! predicted region — at the bottleneck, a tap that is *not* a cut (the
//! encoder features reach the decoder around it), and at the last decoder
//! stage, a cut. Writes overlays to `target/segmentation/` (or `--out DIR`).
//!
//! The trained weights are written in PyTorch's layout (`unet.safetensors`
//! in the output folder, loadable by the matching PyTorch module) and read
//! back with `weights::TorchWeights`, the loader for your own PyTorch
//! checkpoints; `--weights FILE` skips training and explains that file.
//!
//! ```text
//! cargo run --release --example segmentation [-- --out DIR --steps 300 --weights FILE]
//! ```

mod support;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_explainable::demo::{SHAPE_CLASSES, shapes};
use burn_explainable::models::unet::{UNet, UNetConfig, UNetTap};
use burn_explainable::vis::{Colormap, overlay, save_png, tensor_to_image};
use burn_explainable::weights::{TorchWeights, save_safetensors};
use burn_explainable::{Explainable, GradCam, Pipeline, Probe, Targets};
use image::imageops::{FilterType, resize};

const SIZE: usize = 48;
const BATCH: usize = 8;
/// Overlays are drawn this many times larger than the images.
const ZOOM: u32 = 4;

/// Per-pixel labels: 0 for the background, 1 + the shape class inside it.
fn pixel_labels(masks: Tensor<3>, labels: &[usize]) -> Vec<usize> {
    let m: Vec<f32> = masks.into_data().convert::<f32>().try_into_vec().unwrap();
    let plane = SIZE * SIZE;
    m.iter()
        .enumerate()
        .map(|(i, &v)| if v > 0.5 { 1 + labels[i / plane] } else { 0 })
        .collect()
}

/// `[B, C, H, W]` → `[B·H·W, C]`, one row per pixel.
fn per_pixel(out: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = out.dims();
    out.permute([0, 2, 3, 1]).reshape([b * h * w, c])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut steps = 300;
    let mut out = PathBuf::from("target/segmentation");
    let mut weights: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--steps" => steps = args.next().ok_or("--steps needs a value")?.parse()?,
            "--out" => out = args.next().ok_or("--out needs a value")?.into(),
            "--weights" => weights = Some(args.next().ok_or("--weights needs a value")?.into()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let device = Device::flex();
    device.seed(7);
    std::fs::create_dir_all(&out)?;
    let classes = 1 + SHAPE_CLASSES.len();
    let config = UNetConfig::new(3, classes).with_widths([8, 16, 32]);
    let file = match weights {
        Some(file) => file,
        None => {
            let trained = train_unet(&config, steps, &device)?;
            let file = out.join("unet.safetensors");
            save_safetensors(&trained, &file, &[])?;
            file
        }
    };
    // Any PyTorch state dict of this architecture loads the same way.
    let model = TorchWeights::file(&file)
        .load(config.init(&device))?
        .valid();
    println!("explaining the U-Net in {}", file.display());
    explain(&model, classes, &out, &device)
}

/// Trains a U-Net of shape `config` for `steps` Adam steps on fresh images.
fn train_unet(
    config: &UNetConfig,
    steps: usize,
    device: &Device,
) -> Result<UNet, Box<dyn std::error::Error>> {
    let ad = device.clone().autodiff();
    let model = config.init(&ad);
    println!("training a U-Net on {BATCH} fresh {SIZE}×{SIZE} images per step, {steps} steps");
    let started = std::time::Instant::now();
    let model = support::train::train(
        model,
        steps,
        3e-3,
        |m: &UNet, x| per_pixel(m.forward(x)),
        |step| {
            let s = shapes(BATCH, SIZE, 500_000 + step as u64, &ad).expect("valid sizes");
            (s.images, pixel_labels(s.masks, &s.labels))
        },
        |step, loss| {
            println!(
                "  step {step:>4}  loss {loss:.4}  ({:.0} s)",
                started.elapsed().as_secs_f32()
            )
        },
    )
    .valid();
    Ok(model)
}

/// Predicts four fresh images, explains each one's predicted class over
/// its predicted region at two taps, writes the overlays.
fn explain(
    model: &UNet,
    classes: usize,
    out: &Path,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    // Four fresh images: predicted class maps, then what made them.
    let test = shapes(4, SIZE, 99, device)?;
    let truth = pixel_labels(test.masks.clone(), &test.labels);
    let predicted = model.forward(test.images.clone()).argmax(1); // [B, 1, H, W]
    let predicted: Vec<i64> = predicted.into_data().convert::<i64>().try_into_vec()?;
    let hits = predicted
        .iter()
        .zip(&truth)
        .filter(|&(&p, &t)| p as usize == t)
        .count();
    println!(
        "pixel accuracy on 4 fresh images: {:.1}%",
        100.0 * hits as f32 / truth.len() as f32
    );

    // Each image's predicted shape class (most pixels, background aside)
    // and the region predicted as that class.
    let plane = SIZE * SIZE;
    let mut categories = Vec::new();
    let mut masks = Vec::new();
    for image in predicted.chunks(plane) {
        let mut counts = vec![0usize; classes];
        for &p in image {
            counts[p as usize] += 1;
        }
        let class = (1..classes).max_by_key(|&c| counts[c]).unwrap_or(1);
        let truth = SHAPE_CLASSES[test.labels[categories.len()]];
        println!(
            "image {}: a {truth}, predicted {} over {} pixels",
            categories.len(),
            SHAPE_CLASSES[class - 1],
            counts[class]
        );
        categories.push(class as i64);
        masks.extend(image.iter().map(|&p| f32::from(p as usize == class)));
    }
    let targets = Targets::segmentation(
        TensorData::new(categories.clone(), [4, 1]),
        Tensor::<4>::from_data(TensorData::new(masks, [4, 1, SIZE, SIZE]), device),
    );

    let probe = Probe::new(model);
    for (name, tap) in [("bottleneck", UNetTap::Bottleneck), ("dec1", UNetTap::Dec1)] {
        let e = Pipeline::new(GradCam::new()).run(
            &probe.clone().at(tap),
            test.images.clone(),
            &targets,
        )?;
        let maps: Vec<f32> = e.maps.clone().into_data().convert::<f32>().try_into_vec()?;
        // Share of each map's mass on the true shape.
        let mut shares = Vec::new();
        for (i, map) in maps.chunks(plane).enumerate() {
            let total: f32 = map.iter().sum();
            let inside: f32 = map
                .iter()
                .zip(&truth[i * plane..(i + 1) * plane])
                .filter(|&(_, &t)| t > 0)
                .map(|(v, _)| v)
                .sum();
            shares.push(if total > 0.0 { inside / total } else { 0.0 });
            let image =
                tensor_to_image(test.images.clone().narrow(0, i, 1).reshape([3, SIZE, SIZE]))?;
            let image = resize(
                &image,
                ZOOM * SIZE as u32,
                ZOOM * SIZE as u32,
                FilterType::Nearest,
            );
            let map = e.maps.clone().narrow(0, i, 1).reshape([SIZE, SIZE]);
            let path = out.join(format!(
                "{i}_{}_{name}.png",
                SHAPE_CLASSES[categories[i] as usize - 1]
            ));
            save_png(&overlay(&image, map, Colormap::Jet, 0.5)?, &path)?;
        }
        let shares: Vec<String> = shares
            .iter()
            .map(|s| format!("{:.0}%", 100.0 * s))
            .collect();
        println!(
            "Grad-CAM at {name:<10} ({}): share of the map on the true shape: {}",
            if model.is_cut(tap) {
                "a cut"
            } else {
                "not a cut"
            },
            shares.join(", ")
        );
    }
    println!("overlays written to {}", out.display());
    Ok(())
}
