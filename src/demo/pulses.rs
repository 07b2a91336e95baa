//! 1-D: a pulse whose shape is the class, at a random position in noise.

use std::ops::Range;

use burn::module::Param;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d, Relu};
use burn::prelude::*;

use super::uniform;
use crate::error::{Error, Result};
use crate::explainable::{Explainable, Trace};
use crate::output::Output;
use crate::rng::SplitMix64;

/// The pulse classes, in label order.
pub const PULSE_CLASSES: [&str; 3] = ["box", "triangle", "wave"];

/// A batch of synthetic signals.
#[derive(Debug, Clone)]
pub struct Pulses {
    /// The signals, `[n, 1, length]`.
    pub signals: Tensor<3>,
    /// The class of each signal (an index into [`PULSE_CLASSES`]).
    pub labels: Vec<usize>,
    /// Where each pulse lies.
    pub spans: Vec<Range<usize>>,
}

/// `n` signals of `length` samples (`length ≥ 48`), each holding one pulse
/// 12–24 samples wide at a random position, on Gaussian noise (σ = 0.2)
/// plus a slow sinusoid: a box (class 0), a triangle (1) or one period of a
/// sine wave (2), of amplitude 0.8–1.2.
///
/// # Errors
/// [`Error::InvalidConfig`] if `length < 48` or `n == 0`.
///
/// ```
/// use burn::prelude::*;
/// let p = burn_explainable::demo::pulses(4, 64, 7, &Device::flex())?;
/// assert_eq!(p.signals.dims(), [4, 1, 64]);
/// assert!(p.spans.iter().all(|s| s.end <= 64 && s.len() >= 12));
/// # Ok::<(), burn_explainable::Error>(())
/// ```
pub fn pulses(n: usize, length: usize, seed: u64, device: &Device) -> Result<Pulses> {
    if length < 48 || n == 0 {
        return Err(Error::config(
            "pulses",
            format!("need n ≥ 1 signals of length ≥ 48, got n = {n}, length = {length}"),
        ));
    }
    let mut rng = SplitMix64(seed ^ 0x5055_4c53_4553);
    let mut values = Vec::with_capacity(n * length);
    let (mut labels, mut spans) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let class = rng.below(PULSE_CLASSES.len());
        let width = 12 + rng.below(13);
        let start = rng.below(length - width + 1);
        let amplitude = rng.range(0.8, 1.2);
        let (freq, phase) = (rng.range(0.5, 2.0), rng.range(0.0, std::f32::consts::TAU));
        let noise = rng.normals(length);
        values.extend((0..length).map(|i| {
            let t = i as f32 / length as f32;
            let mut v = 0.2 * noise[i] + 0.3 * (std::f32::consts::TAU * freq * t + phase).sin();
            if (start..start + width).contains(&i) {
                let u = (i - start) as f32 / (width - 1) as f32;
                v += amplitude
                    * match class {
                        0 => 1.0,
                        1 => 1.0 - (2.0 * u - 1.0).abs(),
                        _ => (std::f32::consts::TAU * u).sin(),
                    };
            }
            v
        }));
        labels.push(class);
        spans.push(start..start + width);
    }
    Ok(Pulses {
        signals: Tensor::from_data(TensorData::new(values, [n, 1, length]), device),
        labels,
        spans,
    })
}

/// The tap points of [`PulseNet`]: each convolution's output after its ReLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PulseTap {
    /// `[B, 8, L]`.
    Conv1,
    /// `[B, 16, L]`.
    Conv2,
    /// `[B, 16, L]`, entering global average pooling.
    Conv3,
}

/// A small 1-D classifier for [`pulses`]: three "same"-padded convolutions
/// (kernel 9, 1→8→16→16 channels, ReLU) → global average pooling → linear.
#[derive(Module, Debug)]
pub struct PulseNet {
    /// First convolution.
    pub conv1: Conv1d,
    /// Second convolution.
    pub conv2: Conv1d,
    /// Third convolution.
    pub conv3: Conv1d,
    /// The classifier, `[16, 3]`.
    pub fc: Linear,
}

impl PulseNet {
    /// Untrained weights: Kaiming-uniform from `seed`, on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64(seed);
        let mut conv = |i: usize, o: usize| {
            let mut c = Conv1dConfig::new(i, o, 9)
                .with_padding(PaddingConfig1d::Explicit(4, 4))
                .init(device);
            let bound = (6.0 / (i * 9) as f32).sqrt();
            c.weight = Param::from_tensor(uniform(&mut rng, [o, i, 9], bound, device));
            c.bias = Some(Param::from_tensor(Tensor::zeros([o], device)));
            c
        };
        let (conv1, conv2, conv3) = (conv(1, 8), conv(8, 16), conv(16, 16));
        let mut fc = LinearConfig::new(16, PULSE_CLASSES.len()).init(device);
        fc.weight = Param::from_tensor(uniform(&mut rng, [16, 3], 0.25, device));
        fc.bias = Some(Param::from_tensor(Tensor::zeros([3], device)));
        Self {
            conv1,
            conv2,
            conv3,
            fc,
        }
    }

    /// The plain forward pass: logits `[B, 3]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        self.forward_traced(x, &mut Trace::untraced()).flat()
    }
}

fn conv_bias(c: &Conv1d) -> Tensor<1> {
    c.bias
        .as_ref()
        .map(|b| b.val())
        .expect("PulseNet convolutions have biases")
}

impl Explainable<3> for PulseNet {
    type Tap = PulseTap;

    fn forward_traced(&self, x: Tensor<3>, trace: &mut Trace<PulseTap, 3>) -> Output {
        let z = trace.bias(self.conv1.forward(x), || conv_bias(&self.conv1));
        let a = trace.tap(PulseTap::Conv1, Relu::new().forward(z));
        let z = trace.bias(self.conv2.forward(a), || conv_bias(&self.conv2));
        let a = trace.tap(PulseTap::Conv2, Relu::new().forward(z));
        let z = trace.bias(self.conv3.forward(a), || conv_bias(&self.conv3));
        let a = trace.tap(PulseTap::Conv3, Relu::new().forward(z));
        self.fc.forward(a.mean_dim(2).flatten::<2>(1, 2)).into()
    }

    fn is_cut(&self, _: PulseTap) -> bool {
        true
    }

    fn cam_weights(&self, tap: PulseTap) -> Option<Tensor<2>> {
        (tap == PulseTap::Conv3).then(|| self.fc.weight.val())
    }
}
