//! The pointing game on the embedded demo model: on 200 freshly generated
//! images (seeds the training never used), how often each method's map has
//! its maximum inside the object's bounding box.
#![cfg(feature = "resnet")]

mod common;

use burn_explainable::demo::{points_inside, shapes, shapes_resnet};
use burn_explainable::models::resnet::{ResNet, ResNetTap};
use burn_explainable::preprocess::imagenet_normalize;
use burn_explainable::{
    Explainer, FullGrad, GradCam, GradCamPlusPlus, Pipeline, Probe, Saliency, ScoreCam, Targets,
};
use common::{backend_name, device, slow_backward, values};

const IMAGES: usize = 200;
const SIZE: usize = 96;

#[test]
fn grad_cam_points_at_the_object() {
    let device = device();
    let model = shapes_resnet(&device).unwrap();
    let test = shapes(IMAGES, SIZE, 20_261_126, &device).unwrap();
    let x = imagenet_normalize(test.images.clone());
    let labels: Vec<Vec<i64>> = test.labels.iter().map(|&l| vec![l as i64]).collect();
    let targets = Targets::from_rows(&labels);

    let probe = Probe::new(&model).at(ResNetTap::Layer4);
    let logits = probe.forward(x.clone()).unwrap().flat();
    let (_, p) = values(logits.argmax(1).float());
    let correct = p
        .iter()
        .zip(&test.labels)
        .filter(|&(&p, &l)| p as usize == l)
        .count();
    println!("embedded model accuracy on {IMAGES} fresh images: {correct}/{IMAGES}");

    // layer3 (stride 16, a 6×6 map here) is the demo model's explanation
    // layer; layer4 (3×3) is reported for comparison: its cells see the
    // whole image and its maximum often lies beside the object.
    let mut methods: Vec<(&str, ResNetTap, Box<dyn Explainer<ResNet, 4>>)> = vec![
        (
            "Grad-CAM layer3",
            ResNetTap::Layer3,
            Box::new(GradCam::new()),
        ),
        (
            "Grad-CAM layer4",
            ResNetTap::Layer4,
            Box::new(GradCam::new()),
        ),
        (
            "Grad-CAM++ layer3",
            ResNetTap::Layer3,
            Box::new(GradCamPlusPlus::new()),
        ),
    ];
    if slow_backward() {
        println!(
            "backend {}: saliency, FullGrad and Score-CAM skipped (slow backward pass)",
            backend_name()
        );
    } else {
        methods.push(("saliency", ResNetTap::Layer4, Box::new(Saliency::new())));
        methods.push(("FullGrad", ResNetTap::Layer4, Box::new(FullGrad::new())));
        // One masked forward per channel and image: the slowest method here.
        methods.push((
            "Score-CAM layer3",
            ResNetTap::Layer3,
            Box::new(ScoreCam::new().with_batch_size(256)),
        ));
    }
    let mut grad_cam = None;
    for (name, tap, method) in methods {
        let probe = Probe::new(&model).at(tap);
        let e = Pipeline::new(method)
            .with_batch_size(50)
            .run(&probe, x.clone(), &targets)
            .unwrap();
        assert_eq!(e.maps.dims(), [IMAGES, 1, SIZE, SIZE], "{name}");
        let (_, maps) = values(e.maps);
        let hits = maps
            .chunks(SIZE * SIZE)
            .zip(&test.boxes)
            .filter(|(map, b)| {
                let [top, left, bottom, right] = **b;
                points_inside(map, |i| {
                    let (y, x) = (i / SIZE, i % SIZE);
                    (top..bottom).contains(&y) && (left..right).contains(&x)
                })
            })
            .count();
        println!(
            "pointing game, {name}: {hits}/{IMAGES} = {:.1}%",
            100.0 * hits as f32 / IMAGES as f32
        );
        if name == "Grad-CAM layer3" {
            grad_cam = Some(hits);
        }
    }
    let hits = grad_cam.expect("Grad-CAM ran");
    assert!(
        hits * 10 >= IMAGES * 9,
        "Grad-CAM (layer3) points inside the object for {hits}/{IMAGES} images (< 90%)"
    );
}
