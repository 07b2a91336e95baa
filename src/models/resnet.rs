//! A torchvision-compatible ResNet family: ResNet-18/34/50/101/152 and the
//! general configuration (block type, blocks per stage, `groups`,
//! `width_per_group` as in ResNeXt and Wide-ResNet, number of classes), with
//! torchvision checkpoints loaded from `.safetensors` or zip-format `.pth`
//! files.
//!
//! The module tree mirrors torchvision's (`conv1`, `bn1`, `layer1.0.conv1`,
//! …, `fc`), so torchvision's key names load with one remapping
//! (`downsample.0` / `downsample.1` → `downsample.conv` / `downsample.bn`).
//! The model implements [`Explainable`] with taps at the stem, at each stage
//! and at every block, CAM weights behind `layer4`, and FullGrad bias points
//! at every BatchNorm (its effective bias, before the ReLU or residual sum).
//!
//! ```
//! use burn::prelude::*;
//! use burn_explainable::models::resnet::{ResNet, ResNetConfig, ResNetTap};
//! use burn_explainable::{Pipeline, GradCam, Probe, Targets};
//!
//! let device = Device::flex();
//! // A narrow ResNet-18 (16 channels in the stem) with 10 classes; a real
//! // checkpoint loads with `ResNet::load(&ResNetConfig::resnet18(1000), path, &device)`.
//! let model = ResNetConfig::resnet18(10).with_planes(16).init(&device)?;
//! let probe = Probe::new(&model).at(ResNetTap::Layer4);
//! let x = Tensor::<4>::ones([1, 3, 64, 64], &device);
//! let e = Pipeline::new(GradCam::new()).run(&probe, x, &Targets::top_k(2))?;
//! assert_eq!(e.maps.dims(), [1, 2, 64, 64]);
//! # Ok::<(), burn_explainable::Error>(())
//! ```

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::adapters::effective_bias;
use crate::error::{Error, Result};
use crate::explainable::{Explainable, Trace};
use crate::output::Output;
use crate::weights::{TorchWeights, save_safetensors};

/// The residual block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet-18/34), expansion 1.
    Basic,
    /// 1×1 → 3×3 (stride, groups) → 1×1 (ResNet-50 and deeper, ResNeXt,
    /// Wide-ResNet), expansion 4.
    Bottleneck,
}

impl BlockKind {
    fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The shape of a ResNet, as torchvision's `ResNet(block, layers, ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Block type.
    pub block: BlockKind,
    /// Blocks per stage (`layer1` … `layer4`).
    pub layers: [usize; 4],
    /// Groups of the 3×3 convolution in bottleneck blocks.
    pub groups: usize,
    /// torchvision's `width_per_group` (64 by default; 128 for Wide-ResNet).
    pub width_per_group: usize,
    /// Number of classes (rows of `fc`).
    pub num_classes: usize,
    /// Input channels (3 for RGB).
    pub in_channels: usize,
    /// Channels of the stem and `planes` of `layer1` (64 in torchvision);
    /// the stages use `planes`, 2·, 4·, 8·`planes`. Smaller values give
    /// narrow ResNets for small tasks.
    pub planes: usize,
}

impl ResNetConfig {
    /// A ResNet with the given block type and blocks per stage, torchvision
    /// defaults otherwise (1000 classes).
    pub fn new(block: BlockKind, layers: [usize; 4]) -> Self {
        Self {
            block,
            layers,
            groups: 1,
            width_per_group: 64,
            num_classes: 1000,
            in_channels: 3,
            planes: 64,
        }
    }

    /// ResNet-18.
    pub fn resnet18(num_classes: usize) -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2]).with_num_classes(num_classes)
    }

    /// ResNet-34.
    pub fn resnet34(num_classes: usize) -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3]).with_num_classes(num_classes)
    }

    /// ResNet-50.
    pub fn resnet50(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3]).with_num_classes(num_classes)
    }

    /// ResNet-101.
    pub fn resnet101(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 23, 3]).with_num_classes(num_classes)
    }

    /// ResNet-152.
    pub fn resnet152(num_classes: usize) -> Self {
        Self::new(BlockKind::Bottleneck, [3, 8, 36, 3]).with_num_classes(num_classes)
    }

    /// The configuration of a torchvision architecture name: `resnet18`,
    /// `resnet34`, `resnet50`, `resnet101`, `resnet152`, `resnext50_32x4d`,
    /// `resnext101_32x8d`, `wide_resnet50_2`, `wide_resnet101_2`.
    pub fn from_name(name: &str, num_classes: usize) -> Result<Self> {
        let c = match name {
            "resnet18" => Self::resnet18(num_classes),
            "resnet34" => Self::resnet34(num_classes),
            "resnet50" => Self::resnet50(num_classes),
            "resnet101" => Self::resnet101(num_classes),
            "resnet152" => Self::resnet152(num_classes),
            "resnext50_32x4d" => Self::resnet50(num_classes)
                .with_groups(32)
                .with_width_per_group(4),
            "resnext101_32x8d" => Self::resnet101(num_classes)
                .with_groups(32)
                .with_width_per_group(8),
            "wide_resnet50_2" => Self::resnet50(num_classes).with_width_per_group(128),
            "wide_resnet101_2" => Self::resnet101(num_classes).with_width_per_group(128),
            other => {
                return Err(Error::config(
                    "architecture",
                    format!("unknown ResNet `{other}`"),
                ));
            }
        };
        Ok(c)
    }

    /// Sets the number of classes.
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets the groups of bottleneck 3×3 convolutions.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Sets torchvision's `width_per_group`.
    pub fn with_width_per_group(mut self, width_per_group: usize) -> Self {
        self.width_per_group = width_per_group;
        self
    }

    /// Sets the input channels.
    pub fn with_in_channels(mut self, in_channels: usize) -> Self {
        self.in_channels = in_channels;
        self
    }

    /// Sets the stem channels and `layer1` planes (64 in torchvision).
    pub fn with_planes(mut self, planes: usize) -> Self {
        self.planes = planes;
        self
    }

    fn check(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::config("ResNetConfig", reason));
        if self.layers.contains(&0) {
            return bad(format!("every stage needs a block, got {:?}", self.layers));
        }
        if [self.groups, self.num_classes, self.in_channels, self.planes].contains(&0) {
            return bad(format!(
                "groups, classes, channels and planes must be ≥ 1: {self:?}"
            ));
        }
        if self.block == BlockKind::Basic && (self.groups != 1 || self.width_per_group != 64) {
            return bad("basic blocks support only groups = 1 and width_per_group = 64".into());
        }
        if self.block == BlockKind::Bottleneck && self.planes * self.width_per_group < 64 {
            return bad("planes · width_per_group / 64 rounds to 0 channels".into());
        }
        Ok(())
    }
}

/// The tap points of a [`ResNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResNetTap {
    /// The stem's output (after the max-pool), `[B, planes, H/4, W/4]`.
    Stem,
    /// `layer1`'s output (stride 4).
    Layer1,
    /// `layer2`'s output (stride 8).
    Layer2,
    /// `layer3`'s output (stride 16).
    Layer3,
    /// `layer4`'s output (stride 32), entering the pooling head: CAM applies here.
    Layer4,
    /// The output of block `index` (from 0) of stage `stage` (1 to 4).
    Block {
        /// The stage, 1 to 4 (`layer1` … `layer4`).
        stage: usize,
        /// The block within the stage, from 0.
        index: usize,
    },
}

/// `downsample`: a strided 1×1 convolution and BatchNorm on the shortcut.
#[derive(Module, Debug)]
pub struct Downsample {
    /// torchvision's `downsample.0`.
    pub conv: Conv2d,
    /// torchvision's `downsample.1`.
    pub bn: BatchNorm,
}

/// A basic or bottleneck residual block (`conv3`/`bn3` only in bottlenecks).
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution.
    pub conv1: Conv2d,
    /// First BatchNorm.
    pub bn1: BatchNorm,
    /// Second convolution (3×3, carries the stride).
    pub conv2: Conv2d,
    /// Second BatchNorm.
    pub bn2: BatchNorm,
    /// Third convolution (bottleneck only).
    pub conv3: Option<Conv2d>,
    /// Third BatchNorm (bottleneck only).
    pub bn3: Option<BatchNorm>,
    /// The projection shortcut, in the first block of a stage that changes
    /// the shape.
    pub downsample: Option<Downsample>,
}

/// A torchvision-compatible ResNet.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution, 7×7 stride 2.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: BatchNorm,
    /// Stem max-pool, 3×3 stride 2.
    pub maxpool: MaxPool2d,
    /// Stage 1.
    pub layer1: Vec<Block>,
    /// Stage 2.
    pub layer2: Vec<Block>,
    /// Stage 3.
    pub layer3: Vec<Block>,
    /// Stage 4.
    pub layer4: Vec<Block>,
    /// The classifier (Burn layout: weight `[features, classes]`).
    pub fc: Linear,
}

fn conv([i, o]: [usize; 2], k: usize, stride: usize, groups: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    // torchvision's ε; Burn's default differs from it in some versions.
    BatchNormConfig::new(channels)
        .with_epsilon(1e-5)
        .init(device)
}

impl Block {
    fn new(
        c: &ResNetConfig,
        inplanes: usize,
        planes: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        let out = planes * c.block.expansion();
        let downsample = (stride != 1 || inplanes != out).then(|| Downsample {
            conv: conv([inplanes, out], 1, stride, 1, device),
            bn: bn(out, device),
        });
        match c.block {
            BlockKind::Basic => Self {
                conv1: conv([inplanes, planes], 3, stride, 1, device),
                bn1: bn(planes, device),
                conv2: conv([planes, planes], 3, 1, 1, device),
                bn2: bn(planes, device),
                conv3: None,
                bn3: None,
                downsample,
            },
            BlockKind::Bottleneck => {
                let width = planes * c.width_per_group / 64 * c.groups;
                Self {
                    conv1: conv([inplanes, width], 1, 1, 1, device),
                    bn1: bn(width, device),
                    conv2: conv([width, width], 3, stride, c.groups, device),
                    bn2: bn(width, device),
                    conv3: Some(conv([width, out], 1, 1, 1, device)),
                    bn3: Some(bn(out, device)),
                    downsample,
                }
            }
        }
    }

    fn forward<T: Copy + PartialEq + std::fmt::Debug>(
        &self,
        x: Tensor<4>,
        trace: &mut Trace<T, 4>,
    ) -> Tensor<4> {
        let point = |trace: &mut Trace<T, 4>, bn: &BatchNorm, z: Tensor<4>| {
            let out = batch_norm(bn, z);
            trace.bias(out, || effective_bias(bn, None))
        };
        // Read by the body and the shortcut.
        let x = trace.branch(x);
        let shortcut = match &self.downsample {
            Some(d) => {
                let z = d.conv.forward(x.clone());
                point(trace, &d.bn, z)
            }
            None => x.clone(),
        };
        let z = self.conv1.forward(x);
        let h = point(trace, &self.bn1, z);
        let h = trace.relu(h);
        let z = self.conv2.forward(h);
        let mut h = point(trace, &self.bn2, z);
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            let z = conv3.forward(trace.relu(h));
            h = point(trace, bn3, z);
        }
        trace.relu(h + shortcut)
    }
}

/// A BatchNorm as PyTorch evaluates it at inference on the CPU:
/// `y = x·α + (β − μ·α)` with `α = γ / √(σ² + ε)` per channel, two
/// element-wise passes over the activation where Burn's `batch_norm` makes
/// four (subtract, divide, multiply, add). In training (an autodiff device
/// and the layer's training flag on), Burn's own forward, batch statistics
/// and all.
fn batch_norm(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if device.is_autodiff() && bn.training.is_enabled() {
        return bn.forward(x);
    }
    let [channels] = bn.gamma.dims();
    let mean = bn.running_mean.value().to_device(&device);
    let var = bn.running_var.value().to_device(&device);
    let alpha = bn.gamma.val() / var.add_scalar(bn.epsilon).sqrt();
    let shift = bn.beta.val() - mean * alpha.clone();
    x * alpha.reshape([1, channels, 1, 1]) + shift.reshape([1, channels, 1, 1])
}

impl ResNetConfig {
    /// A ResNet of this shape with Burn's default initialisation
    /// (untrained), as Burn's `config.init(&device)`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a stage with no block, zero groups,
    /// classes, channels or planes, grouped or widened basic blocks, or a
    /// bottleneck width that rounds to 0.
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        ResNet::build(self, device)
    }
}

impl ResNet {
    fn build(config: &ResNetConfig, device: &Device) -> Result<Self> {
        config.check()?;
        let c = config;
        let mut inplanes = c.planes;
        let mut stage = |i: usize| {
            let planes = c.planes << i;
            let stride = if i == 0 { 1 } else { 2 };
            (0..c.layers[i])
                .map(|b| {
                    let block =
                        Block::new(c, inplanes, planes, if b == 0 { stride } else { 1 }, device);
                    inplanes = planes * c.block.expansion();
                    block
                })
                .collect::<Vec<_>>()
        };
        let (layer1, layer2, layer3, layer4) = (stage(0), stage(1), stage(2), stage(3));
        let features = (c.planes << 3) * c.block.expansion();
        Ok(Self {
            conv1: conv([c.in_channels, c.planes], 7, 2, 1, device),
            bn1: bn(c.planes, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(features, c.num_classes).init(device),
        })
    }

    /// Everything before the pooling head, with its taps and bias points
    /// passed through `trace`: the `layer4` output `[B, C, h, w]`. For
    /// models built on a ResNet body (an embedding model: pool it and
    /// flatten).
    pub fn features_traced(&self, x: Tensor<4>, trace: &mut Trace<ResNetTap, 4>) -> Tensor<4> {
        let z = batch_norm(&self.bn1, self.conv1.forward(x));
        let z = trace.bias(z, || effective_bias(&self.bn1, None));
        let mut x = self.maxpool.forward(trace.relu(z));
        x = trace.tap(ResNetTap::Stem, x);
        let stage_taps = [
            ResNetTap::Layer1,
            ResNetTap::Layer2,
            ResNetTap::Layer3,
            ResNetTap::Layer4,
        ];
        for (s, (blocks, tap)) in self.stages().into_iter().zip(stage_taps).enumerate() {
            for (index, block) in blocks.iter().enumerate() {
                x = block.forward(x, trace);
                x = trace.tap(
                    ResNetTap::Block {
                        stage: s + 1,
                        index,
                    },
                    x,
                );
            }
            x = trace.tap(tap, x);
        }
        x
    }

    /// The plain forward pass: logits `[B, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_traced(x, &mut Trace::untraced()).flat()
    }

    /// The module paths from the output to the input — `fc`, then every
    /// block from the last (`layer4.1`, `layer4.0`, …, `layer1.0`), then
    /// `bn1` and `conv1` — the order in which
    /// [`ModelRandomization`](crate::metrics::ModelRandomization) randomises
    /// them (Adebayo et al.'s cascade).
    #[must_use]
    pub fn cascade(&self) -> Vec<String> {
        let mut layers = vec!["fc".to_string()];
        for (stage, blocks) in self.stages().iter().enumerate().rev() {
            for block in (0..blocks.len()).rev() {
                layers.push(format!("layer{}.{block}", stage + 1));
            }
        }
        layers.extend(["bn1".to_string(), "conv1".to_string()]);
        layers
    }

    /// The stages, `layer1` … `layer4`.
    pub fn stages(&self) -> [&[Block]; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// Loads a torchvision checkpoint (a `.safetensors` file or a zip-format
    /// `.pth` state dict, recognised by content) into a new model of shape
    /// `config`. torchvision key names; `num_batches_tracked` buffers are
    /// skipped; `fc.weight` is transposed to Burn's layout. The model is in
    /// training mode as constructed; [`Probe::new`](crate::Probe::new) takes
    /// its inference copy.
    ///
    /// # Errors
    /// [`Error::Load`] naming the file and the first problem: unreadable or
    /// truncated file, missing tensors, unexpected tensors (another
    /// architecture), or a tensor of the wrong shape — never a partial load.
    pub fn load(config: &ResNetConfig, path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        torchvision(TorchWeights::file(path)).load(config.init(device)?)
    }

    /// Loads a torchvision-layout `.safetensors` checkpoint held in memory
    /// (e.g. embedded with `include_bytes!`). Same checks as [`ResNet::load`].
    pub fn load_safetensors_bytes(
        config: &ResNetConfig,
        bytes: Vec<u8>,
        device: &Device,
    ) -> Result<Self> {
        torchvision(TorchWeights::safetensors_bytes(bytes)).load(config.init(device)?)
    }

    /// Writes the weights as a `.safetensors` file with torchvision's key
    /// names and layouts, loadable by [`ResNet::load`] and by
    /// `torchvision.models.resnet.ResNet.load_state_dict`.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        save_safetensors(
            self,
            path,
            &[
                (r"\.downsample\.conv\.", ".downsample.0."),
                (r"\.downsample\.bn\.", ".downsample.1."),
            ],
        )
    }
}

/// torchvision's key names: `downsample.0` / `downsample.1`.
fn torchvision(weights: TorchWeights) -> TorchWeights {
    weights
        .remap(r"\.downsample\.0\.", ".downsample.conv.")
        .remap(r"\.downsample\.1\.", ".downsample.bn.")
        .with_names(torchvision_name)
}

/// torchvision's name for a Burn parameter path.
fn torchvision_name(path: &str) -> String {
    let path = path
        .replace(".downsample.conv.", ".downsample.0.")
        .replace(".downsample.bn.", ".downsample.1.");
    match path.rsplit_once('.') {
        Some((m, "gamma")) => format!("{m}.weight"),
        Some((m, "beta")) => format!("{m}.bias"),
        _ => path,
    }
}

impl Explainable<4> for ResNet {
    type Tap = ResNetTap;

    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<ResNetTap, 4>) -> Output {
        let features = self.features_traced(x, trace);
        self.fc
            .forward(features.mean_dims(&[2, 3]).flatten::<2>(1, 3))
            .into()
    }

    /// Every tap of a ResNet is a cut: stage and block outputs carry
    /// everything the layers after them read.
    fn is_cut(&self, _: ResNetTap) -> bool {
        true
    }

    fn cam_weights(&self, tap: ResNetTap) -> Option<Tensor<2>> {
        let last = self.layer4.len() - 1;
        match tap {
            ResNetTap::Layer4 => Some(self.fc.weight.val()),
            ResNetTap::Block { stage: 4, index } if index == last => Some(self.fc.weight.val()),
            _ => None,
        }
    }

    fn check_input(&self, dims: &[usize]) -> std::result::Result<(), String> {
        let channels = self.conv1.weight.dims()[1];
        if dims[1] != channels {
            return Err(format!(
                "this ResNet takes {channels} input channels, got {} (input {dims:?})",
                dims[1]
            ));
        }
        Ok(())
    }
}
