//! A tiny deterministic model for documentation examples and quick tests.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use crate::explainable::{Explainable, Trace};
use crate::output::Output;

/// The tap points of [`TinyNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TinyTap {
    /// The first ReLU's output, `[B, 4, H, W]`.
    Relu1,
    /// The second ReLU's output, entering global average pooling, `[B, 6, H, W]`.
    Relu2,
}

/// `conv(3→4) → ReLU → conv(4→6) → ReLU → global average pooling → linear(6→3)`,
/// 3×3 convolutions with "same" padding and biases, weights from a fixed
/// formula (no randomness).
#[derive(Module, Debug)]
pub struct TinyNet {
    /// First convolution.
    pub conv1: Conv2d,
    /// Second convolution.
    pub conv2: Conv2d,
    /// Class weights, `[6, 3]`.
    pub fc: Linear,
}

fn fill<const D: usize>(shape: [usize; D], salt: f32, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|i| ((i as f32 + 1.0) * 0.7548777 + salt).sin() * 0.5)
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl TinyNet {
    /// The tap entering the pooling head, where CAM applies.
    pub const FEATURES: TinyTap = TinyTap::Relu2;

    /// Builds the model on `device`.
    pub fn new(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let mut conv1 = conv(3, 4);
        let mut conv2 = conv(4, 6);
        let mut fc = LinearConfig::new(6, 3).init(device);
        conv1.weight = conv1.weight.map(|_| fill([4, 3, 3, 3], 0.1, device));
        conv1.bias = conv1.bias.map(|b| b.map(|_| fill([4], 0.2, device)));
        conv2.weight = conv2.weight.map(|_| fill([6, 4, 3, 3], 0.3, device));
        conv2.bias = conv2.bias.map(|b| b.map(|_| fill([6], 0.4, device)));
        fc.weight = fc.weight.map(|_| fill([6, 3], 0.5, device));
        fc.bias = fc.bias.map(|b| b.map(|_| fill([3], 0.6, device)));
        Self { conv1, conv2, fc }
    }

    /// The same architecture with Burn's random initialisation (for the
    /// randomisation sanity check).
    pub fn random(device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(3, 4),
            conv2: conv(4, 6),
            fc: LinearConfig::new(6, 3).init(device),
        }
    }

    /// Everything up to the pooling head: `[B, 6, H, W]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        let a = Relu::new().forward(self.conv1.forward(x));
        Relu::new().forward(self.conv2.forward(a))
    }

    /// Global average pooling and the linear layer: `[B, 3]`.
    pub fn head(&self, a: Tensor<4>) -> Tensor<2> {
        self.fc.forward(a.mean_dims(&[2, 3]).flatten(1, 3))
    }

    /// The plain forward pass.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}

impl Explainable<4> for TinyNet {
    type Tap = TinyTap;

    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<TinyTap, 4>) -> Output {
        let z1 = trace.bias(self.conv1.forward(x), || {
            self.conv1.bias.as_ref().expect("bias").val()
        });
        let a1 = trace.relu(z1);
        let a1 = trace.tap(TinyTap::Relu1, a1);
        let z2 = trace.bias(self.conv2.forward(a1), || {
            self.conv2.bias.as_ref().expect("bias").val()
        });
        let a2 = trace.relu(z2);
        let a2 = trace.tap(TinyTap::Relu2, a2);
        self.head(a2).into()
    }

    fn is_cut(&self, _: TinyTap) -> bool {
        true
    }

    fn cam_weights(&self, tap: TinyTap) -> Option<Tensor<2>> {
        (tap == TinyTap::Relu2).then(|| self.fc.weight.val())
    }
}
