//! The model side: what a model implements to be explained, and the trace
//! its forward pass hands its tap points to.
//!
//! Burn has no forward hooks and keeps gradients only for leaf tensors, so a
//! model offers its activations explicitly: it implements [`Explainable`],
//! writing its forward pass once and passing the tensors at its tap points
//! through a [`Trace`]. What the trace does at a tap depends on the method
//! running: nothing, record the activation, or replace it by a gradient leaf.

use std::fmt::Debug;

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::tensor_ops::repeat_each;

/// A model whose intermediate activations can be explained.
///
/// The model writes its forward pass once, taking a [`Trace`], and hands the
/// tensor at each tap point to [`Trace::tap`] (and, for FullGrad, each
/// pre-activation with a bias to [`Trace::bias`]), continuing with the
/// returned tensor. Points not asked for pass through untouched, so the cost
/// of tracing an unprobed forward is nil.
///
/// `D` is the rank of the input, `[B, C, ...spatial]`: 3 for signals, 4 for
/// images, 5 for volumes. Activations at taps have the same rank
/// (`[B, K, ...spatial]`). The output can have any rank (logits `[B, L]`,
/// a segmentation map `[B, C, H, W]`, an embedding): return it as an
/// [`Output`] with `.into()`; the [`Targets`](crate::Targets) say which
/// scalar of it is explained.
///
/// # Cuts and skip connections
///
/// A tap is a *cut* when the rest of the forward pass depends on the input
/// only through the tapped tensor, and reads no batch size taken before
/// it: stage and block outputs of a plain CNN, the input of a pooling head.
/// At a cut, Grad-CAM and its relatives replicate the tapped activation once
/// per target unit and differentiate only the layers after it: one forward
/// pass for any number of units. Say so with [`is_cut`](Self::is_cut).
///
/// Where a skip connection bypasses the tap (a U-Net's encoder features
/// entering the decoder, FPN, DenseNet), the tap is not a cut. The default
/// `is_cut` (`false`) is always correct: the probe then explains one unit
/// per pass, the skips keep their forward values, and the gradient is the
/// partial derivative through the tap, as pytorch-grad-cam computes it.
/// Declaring a tap a cut when it is not gives wrong maps or a shape error.
///
/// # Failures
///
/// A forward pass that panics (a shape the layers cannot take) is caught
/// and reported as [`Error::ModelPanicked`] with the input's shape; Rust's
/// panic hook still reports the panic on standard error. Implement
/// [`check_input`](Self::check_input) to reject such inputs before they
/// run, with your own message.
///
/// # Example
///
/// ```
/// use burn::prelude::*;
/// use burn::nn::{Linear, LinearConfig, Relu, conv::{Conv2d, Conv2dConfig}, PaddingConfig2d};
/// use burn_explainable::{Explainable, Output, Trace};
///
/// #[derive(Module, Debug)]
/// struct Net { conv: Conv2d, fc: Linear }
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// struct Features; // the one tap point of this model
///
/// impl Explainable<4> for Net {
///     type Tap = Features;
///     fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<Features, 4>) -> Output {
///         let a = Relu::new().forward(self.conv.forward(x));
///         let a = trace.tap(Features, a);
///         self.fc.forward(a.mean_dims(&[2, 3]).flatten::<2>(1, 3)).into()
///     }
///     fn is_cut(&self, _: Features) -> bool {
///         true // only the pooling head follows
///     }
///     fn cam_weights(&self, _: Features) -> Option<Tensor<2>> {
///         Some(self.fc.weight.val())
///     }
///     fn check_input(&self, dims: &[usize]) -> Result<(), String> {
///         match dims[1] {
///             3 => Ok(()),
///             c => Err(format!("Net takes 3 channels, got {c}")),
///         }
///     }
/// }
/// # let device = Device::flex();
/// # let net = Net {
/// #     conv: Conv2dConfig::new([3, 4], [3, 3]).with_padding(PaddingConfig2d::Same).init(&device),
/// #     fc: LinearConfig::new(4, 2).init(&device),
/// # };
/// # let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// # let _ = net.forward_traced(x, &mut Trace::untraced());
/// ```
pub trait Explainable<const D: usize> {
    /// The model's tap points: an enum or a typed handle, chosen by the model.
    type Tap: Copy + PartialEq + Debug;

    /// The forward pass, with every tap point passed through `trace`.
    fn forward_traced(&self, input: Tensor<D>, trace: &mut Trace<Self::Tap, D>) -> Output;

    /// Whether `tap` is a cut of the network (see the trait docs). The
    /// default, `false`, is correct for every model.
    fn is_cut(&self, tap: Self::Tap) -> bool {
        let _ = tap;
        false
    }

    /// The class weights `[K, L]` of a global-average-pooling + linear head
    /// that directly follows `tap` (Burn's `Linear::weight` layout), if there
    /// is one there. CAM needs them.
    fn cam_weights(&self, tap: Self::Tap) -> Option<Tensor<2>> {
        let _ = tap;
        None
    }

    /// Checks that the model can take an input of shape `dims`
    /// (`[B, C, ...spatial]`), saying why not otherwise. Explainers then
    /// return [`Error::InputRejected`] instead of running the forward pass,
    /// and test-time augmentation names the scale that produced the size.
    fn check_input(&self, dims: &[usize]) -> std::result::Result<(), String> {
        let _ = dims;
        Ok(())
    }
}

/// What a [`Trace`] does at the requested tap.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode<T> {
    /// Nothing: every point passes through.
    Pass,
    /// Record the activation at the tap.
    Capture(T),
    /// Record the activation at the tap, then continue with an autodiff leaf
    /// holding `repeat` copies of each sample (sample-major).
    Leaf(T, usize),
    /// Continue with the trace's replacement instead of the activation at
    /// the tap (its rows may differ from the input's at a cut).
    Replace(T),
    /// Add a zero autodiff leaf at every bias point.
    Biases,
    /// Cut the graph at every ReLU point: its output becomes a fresh leaf,
    /// so that the probe can apply its own backward rule there.
    Relus,
    /// Record every attention map.
    Attention,
}

/// A ReLU or branch point reached by the forward pass in [`Mode::Relus`]:
/// its input (on the graph) and the leaf that replaced its output.
pub(crate) struct ReluPoint<const D: usize> {
    pub input: Tensor<D>,
    pub leaf: Tensor<D>,
    /// A branch point (the identity), not a ReLU.
    pub branch: bool,
}

/// A bias point reached by the forward pass: the zero leaf added to the
/// pre-activation, and the bias that enters there.
pub(crate) struct BiasPoint<const D: usize> {
    pub leaf: Tensor<D>,
    pub bias: Tensor<1>,
}

/// The context a model's forward pass hands its tap points to.
///
/// Model code calls [`tap`](Trace::tap) and [`bias`](Trace::bias) and
/// continues with what they return; everything else is the probe's business.
pub struct Trace<T, const D: usize> {
    pub(crate) mode: Mode<T>,
    hits: usize,
    pub(crate) activation: Option<Tensor<D>>,
    pub(crate) leaf: Option<Tensor<D>>,
    pub(crate) replacement: Option<Tensor<D>>,
    pub(crate) biases: Vec<BiasPoint<D>>,
    pub(crate) relus: Vec<ReluPoint<D>>,
    pub(crate) attention: Vec<Tensor<4>>,
}

impl<T: Debug, const D: usize> Debug for Trace<T, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("mode", &self.mode)
            .field("hits", &self.hits)
            .field("bias_points", &self.biases.len())
            .finish()
    }
}

impl<T: Copy + PartialEq + Debug, const D: usize> Trace<T, D> {
    pub(crate) fn with_mode(mode: Mode<T>) -> Self {
        Self {
            mode,
            hits: 0,
            activation: None,
            leaf: None,
            replacement: None,
            biases: Vec::new(),
            relus: Vec::new(),
            attention: Vec::new(),
        }
    }

    /// A trace that does nothing at any point: the plain forward pass.
    pub fn untraced() -> Self {
        Self::with_mode(Mode::Pass)
    }

    /// Hands the activation at tap point `point` to the trace; continue the
    /// forward pass with the returned tensor.
    pub fn tap(&mut self, point: T, activation: Tensor<D>) -> Tensor<D> {
        match self.mode {
            Mode::Capture(tap) if tap == point => {
                self.hits += 1;
                self.activation = Some(activation.clone());
                activation
            }
            Mode::Leaf(tap, repeat) if tap == point => {
                self.hits += 1;
                let plain = activation.detach().without_autodiff();
                self.activation = Some(plain.clone());
                let leaf = repeat_each(plain, repeat).autodiff().require_grad();
                self.leaf = Some(leaf.clone());
                leaf
            }
            Mode::Replace(tap) if tap == point => {
                self.hits += 1;
                self.replacement.take().unwrap_or(activation)
            }
            _ => activation,
        }
    }

    /// Hands a token sequence `[B, prefix + T, C]` to the trace as a tap
    /// point on a grid: the `T` tokens after the `prefix` ones (a class
    /// token, registers) are the cells of `grid` (`D − 2` sizes whose
    /// product is `T`, row-major, as a ViT's patches), and the explainers see
    /// the activation `[B, C, ...grid]`, like a CNN's. Continue with the
    /// returned tokens. The prefix tokens keep their values, so gradients
    /// are taken with respect to the grid tokens only.
    ///
    /// # Panics
    /// If `grid` does not have `D − 2` sizes multiplying to the number of
    /// tokens after the prefix: a bug in the model's forward pass, reported
    /// by the explainers as [`Error::ModelPanicked`].
    pub fn tap_tokens(
        &mut self,
        point: T,
        tokens: Tensor<3>,
        prefix: usize,
        grid: &[usize],
    ) -> Tensor<3> {
        let (capture, leaf) = match self.mode {
            Mode::Capture(tap) => (tap == point, false),
            Mode::Leaf(tap, _) | Mode::Replace(tap) => (false, tap == point),
            _ => (false, false),
        };
        if !capture && !leaf {
            return tokens;
        }
        let [batch, length, channels] = tokens.dims();
        let cells: usize = grid.iter().product();
        assert!(
            grid.len() + 2 == D && prefix + cells == length,
            "tap_tokens: grid {grid:?} after {prefix} prefix tokens does not fit {length} tokens on a rank-{D} input"
        );
        let mut shape = [0; D];
        shape[0] = batch;
        shape[1] = channels;
        shape[2..].copy_from_slice(grid);
        let on_grid: Tensor<D> = tokens
            .clone()
            .narrow(1, prefix, cells)
            .swap_dims(1, 2)
            .reshape(shape);
        if capture {
            self.tap(point, on_grid);
            return tokens;
        }
        let tapped = self.tap(point, on_grid);
        let rows = tapped.dims()[0];
        let body = tapped.reshape([rows, channels, cells]).swap_dims(1, 2);
        if prefix == 0 {
            return body;
        }
        // The prefix is a constant of the differentiated part.
        let head = tokens.narrow(1, 0, prefix).detach().without_autodiff();
        let mut head = repeat_each(head, rows / batch);
        if matches!(self.mode, Mode::Leaf(..)) {
            head = head.autodiff();
        }
        Tensor::cat(vec![head, body], 1)
    }

    /// Hands the attention weights of one layer, `[B, heads, queries, keys]`
    /// (rows summing to 1), to the trace, in forward order; attention
    /// rollout uses them.
    pub fn attention(&mut self, weights: &Tensor<4>) {
        if let Mode::Attention = self.mode {
            self.attention
                .push(weights.clone().detach().without_autodiff());
        }
    }

    /// Applies a ReLU, `max(x, 0)`, through the trace. Guided backpropagation
    /// and deconvolution change the backward rule of every ReLU a model
    /// applies this way (Burn has no backward hooks); everywhere else this
    /// is a plain ReLU. Call it once per ReLU application, also when one
    /// ReLU module is reused, and mark tensors that several layers read
    /// with [`branch`](Self::branch).
    pub fn relu(&mut self, x: Tensor<D>) -> Tensor<D> {
        match self.mode {
            Mode::Relus => {
                let out = burn::tensor::activation::relu(x.clone().detach().without_autodiff());
                let leaf = out.autodiff().require_grad();
                self.relus.push(ReluPoint {
                    input: x,
                    leaf: leaf.clone(),
                    branch: false,
                });
                leaf
            }
            _ => burn::tensor::activation::relu(x),
        }
    }

    /// Hands a tensor that several later layers read (a residual block's
    /// input, read by its body and its shortcut) to the trace; continue with
    /// the returned tensor, which has the same values.
    ///
    /// Guided backpropagation and deconvolution run their backward pass
    /// segment by segment between the ReLU points (see [`relu`](Self::relu)),
    /// and Burn consumes a segment's graph when it runs: a tensor computed
    /// after a ReLU and read by two segments must be a branch point. A
    /// ReLU's output needs none (it is a cut already); a max-pool or other
    /// layer between a ReLU and a residual block's two branches does.
    pub fn branch(&mut self, x: Tensor<D>) -> Tensor<D> {
        match self.mode {
            Mode::Relus => {
                let leaf = x
                    .clone()
                    .detach()
                    .without_autodiff()
                    .autodiff()
                    .require_grad();
                self.relus.push(ReluPoint {
                    input: x,
                    leaf: leaf.clone(),
                    branch: true,
                });
                leaf
            }
            _ => x,
        }
    }

    /// Hands a pre-activation `z = layer(x) + b` to the trace, with a closure
    /// giving its effective bias `b` (one value per channel); continue with
    /// the returned tensor. FullGrad uses these points; `bias` is only called
    /// when it runs.
    ///
    /// For a convolution followed by BatchNorm, report the BatchNorm output
    /// with the folded bias of [`effective_bias`](crate::effective_bias), or
    /// report both layers' outputs with their own biases.
    pub fn bias(
        &mut self,
        preactivation: Tensor<D>,
        bias: impl FnOnce() -> Tensor<1>,
    ) -> Tensor<D> {
        match self.mode {
            Mode::Biases => {
                // A single zero broadcast to the shape: the leaf's gradient
                // has the full shape, but its value costs no memory and
                // adding it reads none.
                let leaf = Tensor::<D>::zeros([1; D], &preactivation.device())
                    .expand(preactivation.shape())
                    .require_grad();
                self.biases.push(BiasPoint {
                    leaf: leaf.clone(),
                    bias: bias().without_autodiff(),
                });
                preactivation + leaf
            }
            _ => preactivation,
        }
    }

    /// Whether this pass records or replaces the tensor at `point` (bias,
    /// ReLU and attention passes count as observing every point). A model
    /// may skip computing what only an unobserved point would see: a ViT's
    /// last block computes its class token alone unless its output is
    /// observed.
    pub fn observes(&self, point: T) -> bool {
        match self.mode {
            Mode::Pass => false,
            Mode::Capture(tap) | Mode::Leaf(tap, _) | Mode::Replace(tap) => tap == point,
            Mode::Biases | Mode::Relus | Mode::Attention => true,
        }
    }

    pub(crate) fn check_reached(&self, tap: T) -> Result<()> {
        match self.hits {
            1 => Ok(()),
            0 => Err(Error::TapNotReached {
                tap: format!("{tap:?}"),
            }),
            count => Err(Error::TapRepeated {
                tap: format!("{tap:?}"),
                count,
            }),
        }
    }
}
