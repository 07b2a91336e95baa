//! Explaining a 1-D convolutional classifier: signals `[B, 1, L]` go through
//! the same explainers, driver and filters as images.
//!
//! Trains `demo::PulseNet` for a few seconds on synthetic pulses (the pulse's
//! shape is the class), then draws a few signals with their Grad-CAM maps
//! and plays the pointing game on 200 fresh signals: how often the map's
//! maximum falls inside the pulse.
//!
//! ```text
//! cargo run --release --example signal_1d
//! ```

mod support;

use burn::prelude::*;
use burn_explainable::demo::{PULSE_CLASSES, PulseNet, PulseTap, points_inside, pulses};
use burn_explainable::{GradCam, Pipeline, Probe, Targets};

const LENGTH: usize = 128;
const STEPS: usize = 300;

fn main() -> Result<(), burn_explainable::Error> {
    let device = Device::flex();
    let ad = device.clone().autodiff();
    println!("training PulseNet on synthetic pulses ({STEPS} steps)");
    let model = support::train::train(
        PulseNet::new(1, &ad),
        STEPS,
        1e-2,
        |m: &PulseNet, x| m.forward(x),
        |step| {
            let p = pulses(32, LENGTH, 1000 + step as u64, &ad).expect("valid sizes");
            (p.signals, p.labels)
        },
        |step, loss| println!("  step {step:>3}  loss {loss:.3}"),
    )
    .valid();

    let test = pulses(200, LENGTH, 7, &device)?;
    let probe = Probe::new(&model).at(PulseTap::Conv3);
    let rows: Vec<Vec<i64>> = test.labels.iter().map(|&l| vec![l as i64]).collect();
    let e = Pipeline::new(GradCam::new()).run(
        &probe,
        test.signals.clone(),
        &Targets::from_rows(&rows),
    )?;
    let maps = e
        .maps
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 maps");
    let signals = test
        .signals
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32");

    for i in 0..4 {
        let span = &test.spans[i];
        println!(
            "\nsignal {i}: a {} pulse at {}..{}",
            PULSE_CLASSES[test.labels[i]], span.start, span.end
        );
        println!(
            "signal   {}",
            sparkline(&signals[i * LENGTH..(i + 1) * LENGTH])
        );
        println!(
            "Grad-CAM {}",
            sparkline(&maps[i * LENGTH..(i + 1) * LENGTH])
        );
        let truth: String = (0..LENGTH)
            .map(|t| if span.contains(&t) { '^' } else { ' ' })
            .collect();
        println!("pulse    {truth}");
    }

    let hits = maps
        .chunks(LENGTH)
        .zip(&test.spans)
        .filter(|(map, span)| points_inside(map, |t| span.contains(&t)))
        .count();
    println!("\npointing game: the Grad-CAM maximum lies inside the pulse for {hits}/200 signals");
    Ok(())
}

/// One character per sample, from low to high.
fn sparkline(v: &[f32]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (lo, hi) = v
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let span = (hi - lo).max(f32::EPSILON);
    v.iter()
        .map(|&x| BARS[(((x - lo) / span) * 7.0).round() as usize])
        .collect()
}
