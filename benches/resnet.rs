//! Every method and combinator on ResNet-18 and ResNet-50 (random weights,
//! inference mode) at batch 1 and 8, 224², one target per image, with the
//! baselines they are held to: inference forward, forward + backward to the
//! tap, forward + backward to the input, and Score-CAM's masked forwards.
//!
//! `cargo bench --bench resnet` (add `-- resnet18` to filter). The device is
//! synchronised inside the timed region (every workload reads its result
//! back). `cargo run --release --example bench_report` prints the same
//! workloads as ratios to the forward pass.

#[path = "../examples/support/workloads.rs"]
#[allow(dead_code)]
mod workloads;

use divan::Bencher;
use workloads::{SCORECAM_CHUNK, Setup, Work, device};

fn main() {
    divan::main();
}

const CASES: &[(&str, usize)] = &[
    ("resnet18", 1),
    ("resnet18", 8),
    ("resnet50", 1),
    ("resnet50", 8),
];

/// The backend named by `BURN_EXPLAINABLE_BENCH_BACKEND` (default `flex`).
fn bench_device() -> burn::prelude::Device {
    let backend = std::env::var("BURN_EXPLAINABLE_BENCH_BACKEND").unwrap_or_else(|_| "flex".into());
    device(&backend).expect("bench backend")
}

fn bench(b: Bencher, (model, batch): (&'static str, usize), work: Work) {
    let setup = Setup::new(model, batch, 224, 1, &bench_device());
    setup.run(&work); // warm-up
    b.bench_local(|| setup.run(&work));
}

macro_rules! benches {
    ($($name:ident => $work:expr),* $(,)?) => {$(
        #[divan::bench(args = CASES, sample_count = 3, sample_size = 1)]
        fn $name(b: Bencher, case: (&'static str, usize)) {
            bench(b, case, $work);
        }
    )*};
}

benches! {
    forward => Work::Forward,
    backward_to_tap => Work::BackwardToTap,
    backward_to_input => Work::BackwardToInput,
    cam => Work::Method("cam"),
    grad_cam => Work::Method("gradcam"),
    grad_cam_plus_plus => Work::Method("gradcam++"),
    saliency => Work::Method("saliency"),
    full_grad => Work::Method("fullgrad"),
    smooth4_grad_cam => Work::Method("smooth4(gradcam)"),
    tta_flip_grad_cam => Work::Method("tta_flip(gradcam)"),
}

/// Score-CAM makes one masked forward per channel and image (512 or 2048
/// at `layer4`): batch 1 only, next to its floor.
#[divan::bench(args = ["resnet18", "resnet50"], sample_count = 1, sample_size = 1)]
fn score_cam(b: Bencher, model: &'static str) {
    bench(b, (model, 1), Work::Method("scorecam"));
}

#[divan::bench(args = ["resnet18", "resnet50"], sample_count = 1, sample_size = 1)]
fn score_cam_floor(b: Bencher, model: &'static str) {
    bench(
        b,
        (model, 1),
        Work::ScoreCamForwards {
            chunk: SCORECAM_CHUNK,
        },
    );
}
