//! The 1-D pointing game: a small convolutional classifier trained on
//! synthetic pulses, and the share of fresh signals whose explanation map
//! peaks inside the pulse.

mod common;

#[path = "../examples/support/train.rs"]
mod train;

use burn::prelude::*;
use burn_explainable::demo::{PulseNet, PulseTap, points_inside, pulses};
use burn_explainable::{
    Cam, Explainer, FullGrad, GradCam, GradCamPlusPlus, Pipeline, Probe, Saliency, ScoreCam,
    Smooth, Targets,
};
use common::{device, values};

const LENGTH: usize = 128;

fn trained(device: &Device) -> PulseNet {
    let ad = device.clone().autodiff();
    train::train(
        PulseNet::new(1, &ad),
        300,
        1e-2,
        |m: &PulseNet, x| m.forward(x),
        |step| {
            let p = pulses(32, LENGTH, 1000 + step as u64, &ad).unwrap();
            (p.signals, p.labels)
        },
        |_, _| {},
    )
    .valid()
}

#[test]
fn grad_cam_points_at_the_pulse() {
    let device = device();
    let model = trained(&device);
    // 200 fresh signals: seeds the training never used.
    let test = pulses(200, LENGTH, 7, &device).unwrap();
    let accuracy = train::accuracy(model.forward(test.signals.clone()), &test.labels);
    println!("accuracy on 200 fresh signals: {:.1}%", 100.0 * accuracy);

    let probe = Probe::new(&model).at(PulseTap::Conv3);
    let labels: Vec<Vec<i64>> = test.labels.iter().map(|&l| vec![l as i64]).collect();
    let targets = Targets::from_rows(&labels);
    let methods: Vec<(&str, Box<dyn Explainer<PulseNet, 3>>)> = vec![
        ("Grad-CAM", Box::new(GradCam::new())),
        ("CAM", Box::new(Cam::new())),
        ("Grad-CAM++", Box::new(GradCamPlusPlus::new())),
        ("Score-CAM", Box::new(ScoreCam::new())),
        ("saliency", Box::new(Saliency::new())),
        ("FullGrad", Box::new(FullGrad::new())),
        ("smooth(Grad-CAM)", Box::new(Smooth::new(GradCam::new()))),
    ];
    let mut grad_cam = None;
    for (name, method) in methods {
        let e = Pipeline::new(method)
            .run(&probe, test.signals.clone(), &targets)
            .unwrap();
        assert_eq!(e.maps.dims(), [200, 1, LENGTH], "{name}");
        let (_, maps) = values(e.maps);
        let hits = maps
            .chunks(LENGTH)
            .zip(&test.spans)
            .filter(|(map, span)| points_inside(map, |i| span.contains(&i)))
            .count();
        let share = hits as f32 / 200.0;
        println!("pointing game, {name}: {hits}/200 = {:.1}%", 100.0 * share);
        if name == "Grad-CAM" {
            grad_cam = Some(share);
        }
    }
    let share = grad_cam.expect("Grad-CAM ran");
    assert!(
        share >= 0.9,
        "Grad-CAM's maximum lies inside the pulse for {:.1}% of the signals (< 90%)",
        100.0 * share
    );
}
