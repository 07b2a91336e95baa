//! Explaining your own Burn model: implement `Explainable` (the trait code is
//! the dozen lines in `impl Explainable<4> for Net`), then call any method.
//!
//! Run with `cargo run --example custom_model`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use burn_explainable::{
    Cam, Explainable, Explainer, FullGrad, GradCam, GradCamPlusPlus, Output, Pipeline, Probe,
    Saliency, ScoreCam, Targets, Trace,
};

#[derive(Module, Debug)]
struct Net {
    conv1: Conv2d,
    conv2: Conv2d,
    fc: Linear,
}

/// Where the model can be probed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tap {
    Block1,
    Block2,
}

impl Explainable<4> for Net {
    type Tap = Tap;
    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<Tap, 4>) -> Output {
        let bias = |c: &Conv2d| c.bias.as_ref().map(|b| b.val()).unwrap();
        let z = trace.bias(self.conv1.forward(x), || bias(&self.conv1));
        let a = trace.tap(Tap::Block1, Relu::new().forward(z));
        let z = trace.bias(self.conv2.forward(a), || bias(&self.conv2));
        let a = trace.tap(Tap::Block2, Relu::new().forward(z));
        self.fc
            .forward(a.mean_dims(&[2, 3]).flatten::<2>(1, 3))
            .into()
    }
    fn is_cut(&self, _: Tap) -> bool {
        true
    }
    fn cam_weights(&self, tap: Tap) -> Option<Tensor<2>> {
        (tap == Tap::Block2).then(|| self.fc.weight.val())
    }
}

/// A dark image with one bright square at (row, col).
fn image(row: usize, col: usize, device: &Device) -> Tensor<4> {
    let mut v = vec![0.0f32; 3 * 16 * 16];
    for c in 0..3 {
        for i in row..row + 4 {
            for j in col..col + 4 {
                v[c * 256 + i * 16 + j] = 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [1, 3, 16, 16]), device)
}

/// Prints a `[h, w]` map in [0, 1] as characters.
fn show(map: Tensor<2>) {
    let [h, w] = map.dims();
    let v = map
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    for i in 0..h {
        let line: String = (0..w)
            .map(|j| b" .:-=+*#%@"[(v[i * w + j].clamp(0.0, 1.0) * 9.0).round() as usize] as char)
            .collect();
        println!("    {line}");
    }
}

fn main() -> burn_explainable::Result<()> {
    let device = Device::flex();
    device.seed(7);
    let conv = |i, o| {
        Conv2dConfig::new([i, o], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&device)
    };
    let net = Net {
        conv1: conv(3, 8),
        conv2: conv(8, 8),
        fc: LinearConfig::new(8, 4).init(&device),
    };
    let probe = Probe::new(&net).at(Tap::Block2);
    let x = Tensor::cat(vec![image(2, 3, &device), image(10, 9, &device)], 0);
    let methods: Vec<(&str, Box<dyn Explainer<Net, 4>>)> = vec![
        ("CAM", Box::new(Cam::new())),
        ("Grad-CAM", Box::new(GradCam::new())),
        ("Grad-CAM++", Box::new(GradCamPlusPlus::new())),
        ("Score-CAM", Box::new(ScoreCam::new())),
        ("saliency", Box::new(Saliency::new())),
        ("FullGrad", Box::new(FullGrad::new())),
    ];
    for (name, method) in methods {
        let e = Pipeline::new(method).run(&probe, x.clone(), &Targets::top_k(1))?;
        let unit = e
            .indices
            .clone()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        let score = e
            .scores
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        println!("{name}: sample 1, unit {} (score {:.3})", unit[1], score[1]);
        show(e.maps.narrow(0, 1, 1).reshape([16, 16]));
    }
    Ok(())
}
