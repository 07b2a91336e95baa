//! A torchvision-compatible Vision Transformer (`VisionTransformer`):
//! patch embedding, a class token, learned position embeddings, pre-norm
//! encoder blocks with fused-projection multi-head attention and an
//! exact-GELU MLP, a final LayerNorm and a linear head on the class token.
//!
//! The module tree follows torchvision's key names, so its state dicts load
//! with `Vit::load` (feature `pytorch`): `encoder.layers.encoder_layer_{i}`
//! maps to the `i`-th block and `mlp.0` / `mlp.3` (or the legacy
//! `mlp.linear_1` / `mlp.linear_2`) to the MLP's two layers.
//!
//! Every tap is a token sequence `[B, 1 + T, C]` handed to
//! [`Trace::tap_tokens`] on the patch grid, so the explainers see
//! `[B, C, h, w]` activations, the class token dropped: Grad-CAM, Grad-CAM++,
//! Score-CAM, saliency, smooth and tta work on a ViT as on a CNN, and the
//! attention weights of every block feed
//! [`AttentionRollout`](crate::AttentionRollout). Every tap is handled as
//! a cut, so gradient methods serve all target units in one pass: block
//! inputs and outputs and the final norm are cuts, and at `Ln1(i)` (a
//! block's normalised input, pytorch-grad-cam's usual ViT target layer),
//! which the block's residual bypasses, the model replicates the residual
//! with the tapped activation, keeping its forward value — the partial
//! derivative through `ln_1` that pytorch-grad-cam computes. FullGrad is not defined here: the model reports no bias points
//! (LayerNorm and linear biases enter token-wise, not as the per-channel
//! biases of a convolution), and FullGrad says so with
//! [`Error::NoBiasPoints`].
//!
//! ```
//! use burn::prelude::*;
//! use burn_explainable::models::vit::{VitConfig, VitTap};
//! use burn_explainable::{GradCam, Pipeline, Probe, Targets};
//!
//! let device = Device::flex();
//! // 32×32 images, 8×8 patches, 2 blocks, 2 heads, width 16, MLP 32, 5 classes.
//! let vit = VitConfig::new(32, 8, 2, 2, 16, 32, 5).init(&device)?;
//! let probe = Probe::new(&vit).at(VitTap::Ln1(1));
//! let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
//! let e = Pipeline::new(GradCam::new()).run(&probe, x, &Targets::top_k(2))?;
//! assert_eq!(e.maps.dims(), [2, 2, 32, 32]);
//! # Ok::<(), burn_explainable::Error>(())
//! ```

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};

use crate::error::Error;
use crate::explainable::{Explainable, Trace};
use crate::output::Output;
use crate::tensor_ops::repeat_each;

/// The tap points of a [`Vit`], each a token sequence on the patch grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VitTap {
    /// The input of block `i` (a cut).
    Input(usize),
    /// The output of block `i`'s first LayerNorm, `ln_1` (the residual
    /// bypasses it and is replicated with it, at its forward value).
    Ln1(usize),
    /// The output of block `i` (a cut).
    Output(usize),
    /// The final LayerNorm's output (a cut).
    Norm,
}

/// The shape of a Vision Transformer, as torchvision's
/// `VisionTransformer(image_size, patch_size, num_layers, num_heads,
/// hidden_dim, mlp_dim, num_classes)`.
#[derive(Config, Debug)]
pub struct VitConfig {
    /// Input height and width (square, fixed).
    pub image_size: usize,
    /// Patch height and width.
    pub patch_size: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Token width `C`.
    pub hidden_dim: usize,
    /// Hidden width of the MLPs.
    pub mlp_dim: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 3)]
    pub in_channels: usize,
    /// LayerNorm epsilon (torchvision: 1e-6).
    #[config(default = 1e-6)]
    pub epsilon: f64,
}

impl VitConfig {
    /// torchvision's `vit_b_16` (224², 16×16 patches, 12 blocks, 12 heads, width 768).
    pub fn vit_b_16(num_classes: usize) -> Self {
        Self::new(224, 16, 12, 12, 768, 3072, num_classes)
    }
    /// torchvision's `vit_b_32`.
    pub fn vit_b_32(num_classes: usize) -> Self {
        Self::new(224, 32, 12, 12, 768, 3072, num_classes)
    }
    /// torchvision's `vit_l_16`.
    pub fn vit_l_16(num_classes: usize) -> Self {
        Self::new(224, 16, 24, 16, 1024, 4096, num_classes)
    }
    /// torchvision's `vit_l_32`.
    pub fn vit_l_32(num_classes: usize) -> Self {
        Self::new(224, 32, 24, 16, 1024, 4096, num_classes)
    }
    /// torchvision's `vit_h_14`.
    pub fn vit_h_14(num_classes: usize) -> Self {
        Self::new(224, 14, 32, 16, 1280, 5120, num_classes)
    }

    /// A torchvision configuration by name (`vit_b_16`, `vit_b_32`,
    /// `vit_l_16`, `vit_l_32`, `vit_h_14`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for another name.
    pub fn from_name(name: &str, num_classes: usize) -> crate::Result<Self> {
        Ok(match name {
            "vit_b_16" => Self::vit_b_16(num_classes),
            "vit_b_32" => Self::vit_b_32(num_classes),
            "vit_l_16" => Self::vit_l_16(num_classes),
            "vit_l_32" => Self::vit_l_32(num_classes),
            "vit_h_14" => Self::vit_h_14(num_classes),
            other => {
                return Err(Error::config(
                    "ViT architecture",
                    format!(
                        "unknown {other:?}; known: vit_b_16, vit_b_32, vit_l_16, vit_l_32, vit_h_14"
                    ),
                ));
            }
        })
    }

    /// The patch grid, `image_size / patch_size` on each side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// A ViT of this shape with torchvision's initialisation of the class
    /// token (zeros) and position embeddings (normal, σ = 0.02), Burn's
    /// elsewhere (untrained).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero size, an image size that is not a
    /// multiple of the patch size, or a width not divisible by the heads.
    pub fn init(&self, device: &Device) -> crate::Result<Vit> {
        let bad = |reason: String| Err(Error::config("VitConfig", reason));
        let sizes = [
            self.image_size,
            self.patch_size,
            self.num_layers,
            self.num_heads,
            self.hidden_dim,
            self.mlp_dim,
            self.num_classes,
            self.in_channels,
        ];
        if sizes.contains(&0) {
            return bad(format!("every size must be at least 1: {self:?}"));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!(
                "image size {} is not a multiple of the patch size {}",
                self.image_size, self.patch_size
            ));
        }
        if !self.hidden_dim.is_multiple_of(self.num_heads) {
            return bad(format!(
                "width {} is not divisible by {} heads",
                self.hidden_dim, self.num_heads
            ));
        }
        let c = self.hidden_dim;
        let tokens = 1 + self.grid() * self.grid();
        let norm = || {
            LayerNormConfig::new(c)
                .with_epsilon(self.epsilon)
                .init(device)
        };
        let layers = (0..self.num_layers)
            .map(|_| EncoderBlock {
                ln_1: norm(),
                self_attention: SelfAttention {
                    in_proj_weight: Param::from_tensor(Tensor::random(
                        [3 * c, c],
                        burn::tensor::Distribution::Normal(0.0, (1.0 / c as f64).sqrt()),
                        device,
                    )),
                    in_proj_bias: Param::from_tensor(Tensor::zeros([3 * c], device)),
                    out_proj: LinearConfig::new(c, c).init(device),
                    heads: self.num_heads,
                },
                ln_2: norm(),
                mlp: Mlp {
                    fc1: LinearConfig::new(c, self.mlp_dim).init(device),
                    fc2: LinearConfig::new(self.mlp_dim, c).init(device),
                },
            })
            .collect();
        Ok(Vit {
            conv_proj: Conv2dConfig::new([self.in_channels, c], [self.patch_size, self.patch_size])
                .with_stride([self.patch_size, self.patch_size])
                .init(device),
            class_token: Param::from_tensor(Tensor::zeros([1, 1, c], device)),
            encoder: Encoder {
                pos_embedding: Param::from_tensor(Tensor::random(
                    [1, tokens, c],
                    burn::tensor::Distribution::Normal(0.0, 0.02),
                    device,
                )),
                layers,
                ln: norm(),
            },
            heads: Heads {
                head: LinearConfig::new(c, self.num_classes).init(device),
            },
            image_size: self.image_size,
            patch_size: self.patch_size,
        })
    }
}

/// Multi-head self-attention with torchvision's fused input projection
/// (`in_proj_weight` `[3C, C]`, PyTorch layout: rows are q, then k, then v).
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// The fused q|k|v projection, `[3C, C]` (PyTorch's layout).
    pub in_proj_weight: Param<Tensor<2>>,
    /// Its bias, `[3C]`.
    pub in_proj_bias: Param<Tensor<1>>,
    /// The output projection.
    pub out_proj: Linear,
    heads: usize,
}

impl SelfAttention {
    /// Attention over `x` `[B, S, C]`: the output `[B, S, C]` and the
    /// weights `[B, heads, S, S]`.
    pub fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let [b, s, c] = x.dims();
        let (h, d) = (self.heads, c / self.heads);
        let qkv = x
            .reshape([b * s, c])
            .matmul(self.in_proj_weight.val().transpose())
            + self.in_proj_bias.val().unsqueeze_dim::<2>(0);
        let qkv = qkv.reshape([b, s, 3 * c]);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * c, c)
                .reshape([b, s, h, d])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((d as f64).sqrt());
        let weights = softmax(scores, 3);
        let out = weights.clone().matmul(v).swap_dims(1, 2).reshape([b, s, c]);
        (self.out_proj.forward(out), weights)
    }

    /// The output for the first `queries` tokens only, `[B, queries, C]`,
    /// attending to every token of `x` `[B, S, C]`: what a classifier that
    /// reads the class token needs from the last block (the keys and
    /// values still come from every token).
    pub fn forward_queries(&self, x: Tensor<3>, queries: usize) -> Tensor<3> {
        let [b, s, c] = x.dims();
        let (h, d) = (self.heads, c / self.heads);
        let weight = self.in_proj_weight.val();
        let bias = self.in_proj_bias.val();
        let q = x
            .clone()
            .narrow(1, 0, queries)
            .reshape([b * queries, c])
            .matmul(weight.clone().narrow(0, 0, c).transpose())
            + bias.clone().narrow(0, 0, c).unsqueeze_dim::<2>(0);
        let kv = x
            .reshape([b * s, c])
            .matmul(weight.narrow(0, c, 2 * c).transpose())
            + bias.narrow(0, c, 2 * c).unsqueeze_dim::<2>(0);
        let kv = kv.reshape([b, s, 2 * c]);
        let heads = |t: Tensor<3>, len: usize| t.reshape([b, len, h, d]).swap_dims(1, 2);
        let q = heads(q.reshape([b, queries, c]), queries);
        let k = heads(kv.clone().narrow(2, 0, c), s);
        let v = heads(kv.narrow(2, c, c), s);
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((d as f64).sqrt());
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, queries, c]);
        self.out_proj.forward(out)
    }
}

/// The MLP of an encoder block: linear, exact GELU, linear.
#[derive(Module, Debug)]
pub struct Mlp {
    /// First layer (torchvision's `mlp.0`).
    pub fc1: Linear,
    /// Second layer (torchvision's `mlp.3`).
    pub fc2: Linear,
}

/// A pre-norm encoder block.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// Norm before attention.
    pub ln_1: LayerNorm,
    /// The attention.
    pub self_attention: SelfAttention,
    /// Norm before the MLP.
    pub ln_2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
}

/// The encoder: position embeddings, blocks, final norm.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Learned position embeddings `[1, 1 + T, C]` (the class token's first).
    pub pos_embedding: Param<Tensor<3>>,
    /// The blocks.
    pub layers: Vec<EncoderBlock>,
    /// The final norm.
    pub ln: LayerNorm,
}

/// The classification head.
#[derive(Module, Debug)]
pub struct Heads {
    /// The linear classifier on the class token.
    pub head: Linear,
}

/// A torchvision-compatible Vision Transformer (see the module docs).
#[derive(Module, Debug)]
pub struct Vit {
    /// Patch embedding: a `patch × patch` convolution of stride `patch`.
    pub conv_proj: Conv2d,
    /// The class token `[1, 1, C]`.
    pub class_token: Param<Tensor<3>>,
    /// The encoder.
    pub encoder: Encoder,
    /// The head.
    pub heads: Heads,
    image_size: usize,
    patch_size: usize,
}

impl Vit {
    /// The patch grid's side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// The plain forward pass: logits `[B, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_traced(x, &mut Trace::untraced()).flat()
    }

    /// Loads a torchvision `VisionTransformer` state dict (`.pth` or
    /// `.safetensors`) into a model of shape `config`, with the same checks
    /// as [`TorchWeights`](crate::weights::TorchWeights): a missing,
    /// unexpected or mis-shaped tensor is an error naming it in
    /// torchvision's spelling.
    ///
    /// # Errors
    /// An invalid configuration, and every error of
    /// [`TorchWeights::load`](crate::weights::TorchWeights::load).
    #[cfg(feature = "pytorch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pytorch")))]
    pub fn load(
        config: &VitConfig,
        path: impl AsRef<std::path::Path>,
        device: &Device,
    ) -> crate::Result<Self> {
        torchvision(crate::weights::TorchWeights::file(path)).load(config.init(device)?)
    }

    /// Loads torchvision `.safetensors` bytes held in memory. Same checks
    /// as [`Vit::load`].
    ///
    /// # Errors
    /// As [`Vit::load`].
    #[cfg(feature = "pytorch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pytorch")))]
    pub fn load_safetensors_bytes(
        config: &VitConfig,
        bytes: Vec<u8>,
        device: &Device,
    ) -> crate::Result<Self> {
        torchvision(crate::weights::TorchWeights::safetensors_bytes(bytes))
            .load(config.init(device)?)
    }
}

impl Vit {
    /// Writes the weights as a `.safetensors` file with torchvision's key
    /// names and layouts, loadable by [`Vit::load`] and by
    /// `torchvision.models.VisionTransformer.load_state_dict`.
    ///
    /// # Errors
    /// [`Error::Store`] when the file cannot be written.
    #[cfg(feature = "pytorch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pytorch")))]
    pub fn save_safetensors(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        crate::weights::save_safetensors(
            self,
            path,
            &[
                (
                    r"^encoder\.layers\.(\d+)\.",
                    "encoder.layers.encoder_layer_$1.",
                ),
                (r"\.mlp\.fc1\.", ".mlp.0."),
                (r"\.mlp\.fc2\.", ".mlp.3."),
            ],
        )
    }
}

/// torchvision's key names for a ViT.
#[cfg(feature = "pytorch")]
fn torchvision(weights: crate::weights::TorchWeights) -> crate::weights::TorchWeights {
    weights
        .remap(
            r"^encoder\.layers\.encoder_layer_(\d+)\.",
            "encoder.layers.$1.",
        )
        .remap(r"\.mlp\.(0|linear_1)\.", ".mlp.fc1.")
        .remap(r"\.mlp\.(3|linear_2)\.", ".mlp.fc2.")
        .with_names(torchvision_name)
}

/// torchvision's name for a Burn parameter path of a ViT.
#[cfg(feature = "pytorch")]
fn torchvision_name(path: &str) -> String {
    let mut parts: Vec<String> = path.split('.').map(String::from).collect();
    if parts.len() > 2 && parts[0] == "encoder" && parts[1] == "layers" {
        parts[2] = format!("encoder_layer_{}", parts[2]);
    }
    let mut name = parts.join(".");
    name = name
        .replace(".mlp.fc1.", ".mlp.0.")
        .replace(".mlp.fc2.", ".mlp.3.");
    match name.rsplit_once('.') {
        Some((m, "gamma")) => format!("{m}.weight"),
        Some((m, "beta")) => format!("{m}.bias"),
        _ => name,
    }
}

impl Explainable<4> for Vit {
    type Tap = VitTap;

    fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<VitTap, 4>) -> Output {
        let patches = self.conv_proj.forward(x); // [B, C, g, g]
        let [b, c, gh, gw] = patches.dims();
        let grid = [gh, gw];
        let patches = patches.reshape([b, c, gh * gw]).swap_dims(1, 2);
        let class = self.class_token.val().expand([b, 1, c]);
        let mut t = Tensor::cat(vec![class, patches], 1) + self.encoder.pos_embedding.val();
        let last = self.encoder.layers.len().saturating_sub(1);
        for (i, block) in self.encoder.layers.iter().enumerate() {
            t = trace.tap_tokens(VitTap::Input(i), t, 1, &grid);
            let y = trace.tap_tokens(VitTap::Ln1(i), block.ln_1.forward(t.clone()), 1, &grid);
            // A tap at `ln_1` may replicate its activation per target unit:
            // the residual follows at its forward value (a constant of the
            // differentiated part, so the gradient is the partial derivative
            // through `ln_1`).
            let (rows, before) = (y.dims()[0], t.dims()[0]);
            if rows != before {
                t = repeat_each(t.detach(), rows / before);
            }
            // The head reads the class token only: unless a later point is
            // observed, the last block computes that token alone (its
            // attention still reads every token).
            if i == last && !trace.observes(VitTap::Output(i)) && !trace.observes(VitTap::Norm) {
                let cls = block.self_attention.forward_queries(y, 1) + t.narrow(1, 0, 1);
                let hidden = gelu(block.mlp.fc1.forward(block.ln_2.forward(cls.clone())));
                let cls = cls + block.mlp.fc2.forward(hidden);
                let rows = cls.dims()[0];
                let cls = self.encoder.ln.forward(cls).reshape([rows, c]);
                return self.heads.head.forward(cls).into();
            }
            let (attended, weights) = block.self_attention.forward(y);
            trace.attention(&weights);
            t = attended + t;
            let hidden = gelu(block.mlp.fc1.forward(block.ln_2.forward(t.clone())));
            let m = block.mlp.fc2.forward(hidden);
            t = t + m;
            t = trace.tap_tokens(VitTap::Output(i), t, 1, &grid);
        }
        let t = trace.tap_tokens(VitTap::Norm, self.encoder.ln.forward(t), 1, &grid);
        let rows = t.dims()[0];
        let class = t.narrow(1, 0, 1).reshape([rows, c]);
        self.heads.head.forward(class).into()
    }

    /// Every tap: at `Ln1` the model replicates the residual itself.
    fn is_cut(&self, _: VitTap) -> bool {
        true
    }

    fn check_input(&self, dims: &[usize]) -> std::result::Result<(), String> {
        let channels = self.conv_proj.weight.dims()[1];
        if dims[1] != channels {
            return Err(format!(
                "this ViT takes {channels} input channels, got {}",
                dims[1]
            ));
        }
        if dims[2] != self.image_size || dims[3] != self.image_size {
            return Err(format!(
                "this ViT takes {0}×{0} images, got {1}×{2}",
                self.image_size, dims[2], dims[3]
            ));
        }
        Ok(())
    }
}
