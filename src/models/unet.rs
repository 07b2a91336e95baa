//! A small U-Net for semantic segmentation: two encoder stages, a
//! bottleneck and two decoder stages whose inputs concatenate the
//! upsampled decoder tensor with the encoder's skip features.
//!
//! The module tree follows the PyTorch module of the same shape
//! (`enc1.0.conv`, `enc1.0.bn`, …, `bottleneck`, `dec2`, `dec1`, `head`),
//! so its state dict loads with `weights::TorchWeights` (feature `pytorch`) and no remapping.
//!
//! ```text
//! enc1 = [ConvBNReLU(in, w0), ConvBNReLU(w0, w0)]     [B, w0, H, W]
//! enc2 = [ConvBNReLU(w0, w1), ConvBNReLU(w1, w1)]     on maxpool2(enc1)     [B, w1, H/2, W/2]
//! bottleneck = ConvBNReLU(w1, w2)                     on maxpool2(enc2)     [B, w2, H/4, W/4]
//! dec2 = ConvBNReLU(w2 + w1, w1) on cat[up2(bottleneck), enc2]              [B, w1, H/2, W/2]
//! dec1 = ConvBNReLU(w1 + w0, w0) on cat[up2(dec2), enc1]                    [B, w0, H, W]
//! head = Conv2d(w0, classes, 1×1, bias)                                     [B, classes, H, W]
//! ```
//!
//! `ConvBNReLU` is a 3×3 convolution (padding 1, no bias), BatchNorm and
//! ReLU; `up2` is bilinear ×2 with half-pixel centres (PyTorch's
//! `align_corners=False`), written as two matrix products so that its
//! backward pass runs on every backend.
//!
//! The bottleneck is **not a cut**: the encoder features reach the decoder
//! around it. [`UNetTap::Dec1`] is a cut (only the 1×1 head follows).
//!
//! ```
//! use burn::prelude::*;
//! use burn_explainable::models::unet::{UNet, UNetConfig, UNetTap};
//! use burn_explainable::{Pipeline, GradCam, Probe, Targets};
//!
//! let device = Device::flex();
//! let model = UNetConfig::new(3, 4).init(&device);
//! let probe = Probe::new(&model).at(UNetTap::Bottleneck);
//! let x = Tensor::<4>::ones([2, 3, 16, 16], &device);
//! // Classes 1 and 3 summed over the whole image (masks `[N, H, W]`, shared).
//! let masks = Tensor::<3>::ones([2, 16, 16], &device);
//! let targets = Targets::segmentation(TensorData::new(vec![1i64, 3], [2]), masks);
//! let e = Pipeline::new(GradCam::new()).run(&probe, x, &targets)?;
//! assert_eq!(e.maps.dims(), [2, 2, 16, 16]);
//! # Ok::<(), burn_explainable::Error>(())
//! ```

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use crate::adapters::effective_bias;
use crate::explainable::{Explainable, Trace};
use crate::output::Output;

/// The tap points of a [`UNet`]: each stage's output (after its last ReLU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UNetTap {
    /// First encoder stage, `[B, w0, H, W]` (also the skip into `dec1`).
    Enc1,
    /// Second encoder stage, `[B, w1, H/2, W/2]` (also the skip into `dec2`).
    Enc2,
    /// The bottleneck, `[B, w2, H/4, W/4]`: not a cut.
    Bottleneck,
    /// First decoder stage, `[B, w1, H/2, W/2]`: not a cut (`enc1` bypasses it).
    Dec2,
    /// Last decoder stage, `[B, w0, H, W]`: a cut.
    Dec1,
}

/// The configuration of a [`UNet`].
#[derive(Config, Debug)]
pub struct UNetConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output classes.
    pub classes: usize,
    /// Channels of the first encoder stage, the second and the bottleneck.
    #[config(default = "[16, 32, 64]")]
    pub widths: [usize; 3],
}

impl UNetConfig {
    /// A U-Net with fresh weights (training mode, as Burn modules start).
    pub fn init(&self, device: &Device) -> UNet {
        let [w0, w1, w2] = self.widths;
        UNet {
            enc1: vec![
                ConvBnRelu::new(self.in_channels, w0, device),
                ConvBnRelu::new(w0, w0, device),
            ],
            enc2: vec![
                ConvBnRelu::new(w0, w1, device),
                ConvBnRelu::new(w1, w1, device),
            ],
            bottleneck: ConvBnRelu::new(w1, w2, device),
            dec2: ConvBnRelu::new(w2 + w1, w1, device),
            dec1: ConvBnRelu::new(w1 + w0, w0, device),
            head: Conv2dConfig::new([w0, self.classes], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }
}

/// A 3×3 convolution without bias, BatchNorm and ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    /// The convolution (no bias).
    pub conv: Conv2d,
    /// The normalisation.
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    /// A fresh block from `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).with_epsilon(1e-5).init(device),
        }
    }

    /// The block's forward pass, reporting its BatchNorm output (before
    /// the ReLU) as a FullGrad bias point.
    pub fn forward<T: Copy + PartialEq + std::fmt::Debug>(
        &self,
        x: Tensor<4>,
        trace: &mut Trace<T, 4>,
    ) -> Tensor<4> {
        let z = self.bn.forward(self.conv.forward(x));
        let z = trace.bias(z, || effective_bias(&self.bn, None));
        Relu::new().forward(z)
    }
}

/// A small U-Net (see the module docs).
#[derive(Module, Debug)]
pub struct UNet {
    /// First encoder stage.
    pub enc1: Vec<ConvBnRelu>,
    /// Second encoder stage.
    pub enc2: Vec<ConvBnRelu>,
    /// The bottleneck.
    pub bottleneck: ConvBnRelu,
    /// First decoder stage.
    pub dec2: ConvBnRelu,
    /// Last decoder stage.
    pub dec1: ConvBnRelu,
    /// The 1×1 classifier.
    pub head: Conv2d,
    pool: MaxPool2d,
}

/// The `[2n, n]` matrix of bilinear ×2 upsampling with half-pixel centres.
fn upsample_matrix(n: usize, device: &Device) -> Tensor<2> {
    let mut m = vec![0.0f32; 2 * n * n];
    for i in 0..2 * n {
        let src = ((i as f32 + 0.5) / 2.0 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        let frac = src - i0 as f32;
        m[i * n + i0] += 1.0 - frac;
        m[i * n + i1] += frac;
    }
    Tensor::from_data(TensorData::new(m, [2 * n, n]), device)
}

/// Bilinear ×2 upsampling (half-pixel centres) as `U_h · x · U_wᵀ`.
#[must_use]
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let uw = upsample_matrix(w, &device)
        .transpose()
        .reshape([1, 1, w, 2 * w])
        .expand([b, c, w, 2 * w]);
    let uh = upsample_matrix(h, &device)
        .reshape([1, 1, 2 * h, h])
        .expand([b, c, 2 * h, h]);
    uh.matmul(x.matmul(uw))
}

impl UNet {
    /// The plain forward pass: class scores `[B, classes, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_traced(x, &mut Trace::untraced())
            .tensor()
            .expect("the U-Net returns a rank-4 map")
    }
}

impl Explainable<4> for UNet {
    type Tap = UNetTap;

    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<UNetTap, 4>) -> Output {
        let mut e1 = x;
        for layer in &self.enc1 {
            e1 = layer.forward(e1, trace);
        }
        let e1 = trace.tap(UNetTap::Enc1, e1);
        let mut e2 = self.pool.forward(e1.clone());
        for layer in &self.enc2 {
            e2 = layer.forward(e2, trace);
        }
        let e2 = trace.tap(UNetTap::Enc2, e2);
        let bottom = self
            .bottleneck
            .forward(self.pool.forward(e2.clone()), trace);
        let bottom = trace.tap(UNetTap::Bottleneck, bottom);
        let d2 = self
            .dec2
            .forward(Tensor::cat(vec![upsample2(bottom), e2], 1), trace);
        let d2 = trace.tap(UNetTap::Dec2, d2);
        let d1 = self
            .dec1
            .forward(Tensor::cat(vec![upsample2(d2), e1], 1), trace);
        let d1 = trace.tap(UNetTap::Dec1, d1);
        let head_bias = || {
            self.head
                .bias
                .as_ref()
                .map(|b| b.val())
                .expect("the U-Net head has a bias")
        };
        trace.bias(self.head.forward(d1), head_bias).into()
    }

    fn is_cut(&self, tap: UNetTap) -> bool {
        tap == UNetTap::Dec1
    }

    fn check_input(&self, dims: &[usize]) -> std::result::Result<(), String> {
        let channels = self.enc1[0].conv.weight.dims()[1];
        if dims[1] != channels {
            return Err(format!(
                "this U-Net takes {channels} input channels, got {}",
                dims[1]
            ));
        }
        if !dims[2].is_multiple_of(4) || !dims[3].is_multiple_of(4) {
            return Err(format!(
                "this U-Net needs a height and width divisible by 4, got {}×{}",
                dims[2], dims[3]
            ));
        }
        Ok(())
    }
}
