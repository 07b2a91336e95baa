//! Trains the embedded demo model: a narrow ResNet (our `models::resnet`,
//! one basic block per stage, 16 stem channels) on `demo::shapes`, and writes
//! its weights with torchvision's key names to
//! `assets/shapes_resnet.safetensors`, plus a few sample images to
//! `assets/samples/`.
//!
//! ```text
//! cargo run --release --example train_shapes [-- --steps 1500 --out assets]
//! ```
//!
//! Deterministic for a given step count: weights start from a fixed seed
//! and every batch is generated from its step number.

mod support;

use std::path::PathBuf;

use burn::prelude::*;
use burn_explainable::demo::{SHAPE_CLASSES, shapes, shapes_resnet_config};
use burn_explainable::models::resnet::ResNet;
use burn_explainable::preprocess::imagenet_normalize;
use burn_explainable::vis::{save_png, tensor_to_image};

const SIZE: usize = 96;
const BATCH: usize = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut steps = 1500;
    let mut out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--steps" => steps = args.next().ok_or("--steps needs a value")?.parse()?,
            "--out" => out = args.next().ok_or("--out needs a value")?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let device = Device::flex();
    device.seed(2024);
    let ad = device.clone().autodiff();
    let model = shapes_resnet_config().init(&ad)?;
    println!("training on {BATCH} fresh {SIZE}×{SIZE} images per step, {steps} steps");
    let started = std::time::Instant::now();
    let model = support::train::train(
        model,
        steps,
        2e-3,
        |m: &ResNet, x| m.forward(imagenet_normalize(x)),
        |step| {
            let s = shapes(BATCH, SIZE, 1_000_000 + step as u64, &ad).expect("valid sizes");
            (s.images, s.labels)
        },
        |step, loss| {
            println!(
                "  step {step:>5}  loss {loss:.4}  ({:.0} s)",
                started.elapsed().as_secs_f32()
            )
        },
    )
    .valid();

    let test = shapes(200, SIZE, 42, &device)?;
    let logits = model.forward(imagenet_normalize(test.images.clone()));
    let accuracy = support::train::accuracy(logits, &test.labels);
    println!("accuracy on 200 fresh images: {:.1}%", 100.0 * accuracy);

    std::fs::create_dir_all(out.join("samples"))?;
    let weights = out.join("shapes_resnet.safetensors");
    model.save_safetensors(&weights)?;
    println!("wrote {}", weights.display());
    let samples = shapes(SHAPE_CLASSES.len() * 3, SIZE, 7, &device)?;
    let mut written = vec![false; SHAPE_CLASSES.len()];
    for (i, &label) in samples.labels.iter().enumerate() {
        if written[label] {
            continue;
        }
        written[label] = true;
        let image = samples.images.clone().narrow(0, i, 1).squeeze_dim::<3>(0);
        let path = out
            .join("samples")
            .join(format!("{}.png", SHAPE_CLASSES[label]));
        save_png(&tensor_to_image(image)?, &path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
