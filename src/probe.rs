//! Access to a model's intermediate activations, and the only code in the
//! crate that touches autodiff.
//!
//! Burn has no forward hooks and keeps gradients only for leaf tensors, so a
//! model offers its activations explicitly: it implements [`Explainable`],
//! writing its forward pass once and passing the tensors at its tap points
//! through a [`Trace`]. What the trace does at a tap depends on the method
//! running: nothing, record the activation, or replace it by a gradient leaf.
//!
//! A [`Probe`] wraps an inference-mode copy of a model and the selected tap,
//! and runs the forward and backward passes the methods need.

use std::fmt::Debug;
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::targets::{Resolved, Targets};
use crate::tensor_ops::{cat_units, check_finite, check_not_empty, repeat_each, take_rows};

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
/// (`[B, K, ...spatial]`).
///
/// # Tap contract
///
/// Every tap must be a *cut* of the network: the rest of the forward pass
/// depends on the input only through the tapped tensor (true of stage and
/// block outputs, and of the input of a pooling head). Gradient methods
/// replicate the tapped activation along the batch, one copy per target
/// unit, and run only the layers after the tap with autodiff.
///
/// # Example
///
/// ```
/// use burn::prelude::*;
/// use burn::nn::{Linear, LinearConfig, Relu, conv::{Conv2d, Conv2dConfig}, PaddingConfig2d};
/// use burn_explainable::{Explainable, Trace};
///
/// #[derive(Module, Debug)]
/// struct Net { conv: Conv2d, fc: Linear }
///
/// #[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// struct Features; // the one tap point of this model
///
/// impl Explainable<4> for Net {
///     type Tap = Features;
///     fn forward_traced(&self, x: Tensor<4>, trace: &mut Trace<Features, 4>) -> Tensor<2> {
///         let a = Relu::new().forward(self.conv.forward(x));
///         let a = trace.tap(Features, a);
///         self.fc.forward(a.mean_dims(&[2, 3]).flatten(1, 3))
///     }
///     fn cam_weights(&self, _: Features) -> Option<Tensor<2>> {
///         Some(self.fc.weight.val())
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

    /// The forward pass, returning the logits `[B, L]`, with every tap point
    /// passed through `trace`.
    fn forward_traced(&self, input: Tensor<D>, trace: &mut Trace<Self::Tap, D>) -> Tensor<2>;

    /// The class weights `[K, L]` of a global-average-pooling + linear head
    /// that directly follows `tap` (Burn's `Linear::weight` layout), if there
    /// is one there. CAM needs them.
    fn cam_weights(&self, tap: Self::Tap) -> Option<Tensor<2>> {
        let _ = tap;
        None
    }

    /// Checks that the model can take an input of shape `dims`
    /// (`[B, C, ...spatial]`), saying why not otherwise. Models with a fixed
    /// input size should implement it: explainers then return
    /// [`Error::InputRejected`] instead of running the forward pass, and
    /// test-time augmentation names the scale that produced the size.
    fn check_input(&self, dims: &[usize]) -> std::result::Result<(), String> {
        let _ = dims;
        Ok(())
    }
}

/// What a [`Trace`] does at the requested tap.
#[derive(Debug, Clone, Copy)]
enum Mode<T> {
    /// Nothing: every point passes through.
    Pass,
    /// Record the activation at the tap.
    Capture(T),
    /// Record the activation at the tap, then continue with an autodiff leaf
    /// holding `repeat` copies of each sample (sample-major).
    Leaf(T, usize),
    /// Add a zero autodiff leaf at every bias point.
    Biases,
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
    mode: Mode<T>,
    hits: usize,
    activation: Option<Tensor<D>>,
    leaf: Option<Tensor<D>>,
    biases: Vec<BiasPoint<D>>,
}

impl<T: Copy + PartialEq + Debug, const D: usize> Trace<T, D> {
    fn with_mode(mode: Mode<T>) -> Self {
        Self {
            mode,
            hits: 0,
            activation: None,
            leaf: None,
            biases: Vec::new(),
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
            _ => activation,
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

    fn check_reached(&self, tap: T) -> Result<()> {
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

/// Scores, activation and gradients at a tap, for `B` samples and `N` units.
#[derive(Debug, Clone)]
pub struct TapGradients<const D: usize> {
    /// Selected scores `[B, N]`.
    pub scores: Tensor<2>,
    /// The resolved target indices `[B, N]`.
    pub indices: Tensor<2, Int>,
    /// The activation at the tap, `[B, K, ...spatial]`.
    pub activation: Tensor<D>,
    /// `∂ score[b, n] / ∂ activation[b]`, `[B·N, K, ...spatial]`, row `b·N + n`.
    pub gradients: Tensor<D>,
}

/// Scores and input gradients for `B` samples and `N` units, with the
/// gradients at every bias point when asked for.
#[derive(Debug, Clone)]
pub struct InputGradients<const D: usize> {
    /// Selected scores `[B, N]`.
    pub scores: Tensor<2>,
    /// The resolved target indices `[B, N]`.
    pub indices: Tensor<2, Int>,
    /// `∂ score[b, n] / ∂ input[b]`, `[B·N, C, ...spatial]`, row `b·N + n`.
    pub gradients: Tensor<D>,
    /// For every bias point in forward order: its bias `[K_l]` and
    /// `∂ score[b, n] / ∂ z_l[b]`, `[B·N, K_l, ...spatial_l]`, row `b·N + n`.
    /// Empty unless bias points were asked for.
    pub biases: Vec<(Tensor<1>, Tensor<D>)>,
}

/// A model prepared for explanation, with the tap point the CAM methods use.
///
/// `Probe::new` keeps an inference-mode copy of the model
/// ([`Module::valid`]): BatchNorm uses its running statistics, dropout is
/// off, and nothing an explainer does can change the caller's model.
#[derive(Debug, Clone)]
pub struct Probe<M: Explainable<D>, const D: usize> {
    model: M,
    tap: Option<M::Tap>,
    on_pass: Option<PassHook>,
}

/// A callback run after every pass through the model.
#[derive(Clone)]
struct PassHook(Arc<dyn Fn(usize) + Send + Sync>);

impl Debug for PassHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassHook")
    }
}

impl<M: Explainable<D>, const D: usize> Probe<M, D> {
    /// Wraps an inference-mode copy of `model`, with no tap selected.
    pub fn new(model: &M) -> Self
    where
        M: Module,
    {
        Self::from_prepared(model.valid())
    }

    /// Wraps a model that is already in inference mode (see [`Module::valid`]).
    pub fn from_prepared(model: M) -> Self {
        Self {
            model,
            tap: None,
            on_pass: None,
        }
    }

    /// Calls `hook(rows)` after every pass through the model, with the
    /// number of rows (samples, masked copies or target units) the pass
    /// processed — for progress reporting by the caller; the library itself
    /// never prints.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use burn::prelude::*;
    /// use burn_explainable::{Explainer, Probe, ScoreCam, Targets, testing::TinyNet};
    ///
    /// let device = Device::flex();
    /// let rows = Arc::new(AtomicUsize::new(0));
    /// let seen = rows.clone();
    /// let probe = Probe::new(&TinyNet::new(&device))
    ///     .at(TinyNet::FEATURES)
    ///     .on_pass(move |n| { seen.fetch_add(n, Ordering::Relaxed); });
    /// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
    /// ScoreCam::new().explain(&probe, x, &Targets::top_k(1))?;
    /// // One plain pass, then one masked copy per channel (6) of the tap.
    /// assert_eq!(rows.load(Ordering::Relaxed), 1 + 6);
    /// # Ok::<(), burn_explainable::Error>(())
    /// ```
    pub fn on_pass(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_pass = Some(PassHook(Arc::new(hook)));
        self
    }

    /// The model's forward pass, reported to the pass hook.
    fn run(&self, input: Tensor<D>, trace: &mut Trace<M::Tap, D>) -> Tensor<2> {
        let rows = input.dims()[0];
        let logits = self.model.forward_traced(input, trace);
        if let Some(hook) = &self.on_pass {
            (hook.0)(rows);
        }
        logits
    }

    /// Selects the tap point the CAM methods explain.
    pub fn at(mut self, tap: M::Tap) -> Self {
        self.tap = Some(tap);
        self
    }

    /// The selected tap point.
    pub fn tap(&self) -> Option<M::Tap> {
        self.tap
    }

    /// The wrapped, inference-mode model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The selected tap, or an error naming `method`.
    pub fn require_tap(&self, method: &'static str) -> Result<M::Tap> {
        self.tap.ok_or(Error::NoTap { method })
    }

    /// Checks an input and moves it off any autodiff graph.
    fn prepare(&self, input: Tensor<D>) -> Result<Tensor<D>> {
        let dims = input.dims();
        check_not_empty("input", &dims)?;
        self.model
            .check_input(&dims)
            .map_err(|reason| Error::InputRejected {
                shape: dims.to_vec(),
                reason,
            })?;
        let input = input.detach().without_autodiff();
        check_finite("input", &input)?;
        Ok(input)
    }

    fn check_logits(&self, logits: &Tensor<2>, rows: usize) -> Result<()> {
        let dims = logits.dims();
        if dims[0] != rows {
            return Err(Error::Shape {
                what: "model output rows (a tap must be a cut of the network)",
                expected: vec![rows, dims[1]],
                actual: dims.to_vec(),
            });
        }
        check_not_empty("model output", &dims)
    }

    /// The plain forward pass: logits `[B, L]`.
    ///
    /// # Errors
    /// An empty or non-finite input.
    pub fn forward(&self, input: Tensor<D>) -> Result<Tensor<2>> {
        let input = self.prepare(input)?;
        let rows = input.dims()[0];
        let logits = self.run(input, &mut Trace::untraced());
        self.check_logits(&logits, rows)?;
        Ok(logits)
    }

    /// The plain forward pass of an input already checked by the caller.
    pub(crate) fn forward_unchecked(&self, input: Tensor<D>) -> Tensor<2> {
        self.run(input, &mut Trace::untraced())
    }

    /// One forward pass recording the activation at the selected tap:
    /// logits `[B, L]` and activation `[B, K, ...spatial]`. No autodiff.
    ///
    /// # Errors
    /// No tap selected, the tap not reached exactly once, or a bad input.
    pub fn activations(&self, input: Tensor<D>) -> Result<(Tensor<2>, Tensor<D>)> {
        let tap = self.require_tap("this method")?;
        let input = self.prepare(input)?;
        let rows = input.dims()[0];
        let mut trace = Trace::with_mode(Mode::Capture(tap));
        let logits = self.run(input, &mut trace);
        trace.check_reached(tap)?;
        self.check_logits(&logits, rows)?;
        let activation = trace.activation.take().expect("reached tap was recorded");
        Ok((logits, activation))
    }

    /// Resolves `targets` for `input`, running a forward pass only when the
    /// number of units cannot be known without one ([`Targets::All`]).
    fn units(&self, input: &Tensor<D>, targets: &Targets) -> Result<(usize, Option<Resolved>)> {
        targets.validate(input.dims()[0])?;
        match targets.units_per_sample() {
            Some(n) => Ok((n, None)),
            None => {
                let logits = self.run(input.clone(), &mut Trace::untraced());
                self.check_logits(&logits, input.dims()[0])?;
                let resolved = targets.resolve(&logits)?;
                Ok((resolved.units, Some(resolved)))
            }
        }
    }

    /// Scores, activation and the gradients of each selected score with
    /// respect to the activation at the selected tap.
    ///
    /// The layers before the tap run once per pass without autodiff; the
    /// activation is replicated once per unit and only the layers after the
    /// tap are differentiated, with one backward pass serving every sample
    /// and up to `units_per_pass` units.
    ///
    /// # Cost
    /// `⌈N / units_per_pass⌉` forward passes of the batch and as many
    /// backward passes through the layers after the tap (plus one forward for
    /// [`Targets::All`]).
    ///
    /// # Errors
    /// No tap, bad targets or input, or `units_per_pass == 0`.
    pub fn tap_gradients(
        &self,
        input: Tensor<D>,
        targets: &Targets,
        units_per_pass: usize,
    ) -> Result<TapGradients<D>> {
        let tap = self.require_tap("this method")?;
        check_per_pass(units_per_pass)?;
        let input = self.prepare(input)?;
        let batch = input.dims()[0];
        let (n, mut resolved) = self.units(&input, targets)?;
        let mut activation = None;
        let (mut scores, mut gradients) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(units_per_pass) {
            let len = units_per_pass.min(n - start);
            let mut trace = Trace::with_mode(Mode::Leaf(tap, len));
            let logits = self.run(input.clone(), &mut trace);
            if let Err(e) = trace
                .check_reached(tap)
                .and_then(|()| self.check_logits(&logits, batch * len))
            {
                discard(logits);
                return Err(e);
            }
            let leaf = trace.leaf.take().expect("reached tap made a leaf");
            let (selected, grads) =
                select_and_backward(&logits, targets, &mut resolved, start..start + len)?;
            gradients.push(
                leaf.grad(&grads)
                    .unwrap_or_else(|| leaf.clone().inner().zeros_like()),
            );
            scores.push(selected);
            activation = activation.or(trace.activation.take());
        }
        let resolved = resolved.expect("at least one pass ran");
        Ok(TapGradients {
            scores: Tensor::cat(scores, 1),
            indices: resolved.tensor(&input.device()),
            activation: activation.expect("reached tap was recorded"),
            gradients: cat_units(gradients, batch),
        })
    }

    /// Scores and the gradients of each selected score with respect to the
    /// input, and, with `with_biases`, with respect to every bias point the
    /// model reports (see [`Trace::bias`]).
    ///
    /// The input is replicated once per unit, so one forward and one
    /// backward pass serve every sample and up to `units_per_pass` units.
    ///
    /// # Cost
    /// `⌈N / units_per_pass⌉` forward and backward passes of a batch of
    /// `B · min(N, units_per_pass)` samples (plus one forward for [`Targets::All`]).
    ///
    /// # Errors
    /// Bad targets or input, `units_per_pass == 0`, or no bias points when
    /// `with_biases` is set.
    pub fn input_gradients(
        &self,
        input: Tensor<D>,
        targets: &Targets,
        units_per_pass: usize,
        with_biases: bool,
    ) -> Result<InputGradients<D>> {
        let batch = input.dims()[0];
        let (scores, indices, passes) =
            self.input_gradient_passes(input, targets, units_per_pass, with_biases, |_, g, b| {
                Ok((g, b))
            })?;
        let mut gradients = Vec::with_capacity(passes.len());
        let mut per_point: Vec<(Tensor<1>, Vec<Tensor<D>>)> = Vec::new();
        for (g, points) in passes {
            gradients.push(g);
            if per_point.is_empty() {
                per_point = points
                    .iter()
                    .map(|(b, _)| (b.clone(), Vec::new()))
                    .collect();
            }
            for (slot, (_, grad)) in per_point.iter_mut().zip(points) {
                slot.1.push(grad);
            }
        }
        Ok(InputGradients {
            scores,
            indices,
            gradients: cat_units(gradients, batch),
            biases: per_point
                .into_iter()
                .map(|(bias, chunks)| (bias, cat_units(chunks, batch)))
                .collect(),
        })
    }

    /// The passes of [`input_gradients`](Self::input_gradients), each
    /// handed to `each` as soon as it has run — `(units, input gradients
    /// [B·units, C, ...], bias points [(bias, gradient [B·units, K_l, ...])])`
    /// — so that a method can reduce a pass's gradients before the next
    /// pass holds its own. Returns the scores `[B, N]`, the target indices
    /// and what `each` returned, in pass order.
    pub(crate) fn input_gradient_passes<T>(
        &self,
        input: Tensor<D>,
        targets: &Targets,
        units_per_pass: usize,
        with_biases: bool,
        mut each: impl FnMut(usize, Tensor<D>, Vec<(Tensor<1>, Tensor<D>)>) -> Result<T>,
    ) -> Result<(Tensor<2>, Tensor<2, Int>, Vec<T>)> {
        check_per_pass(units_per_pass)?;
        let input = self.prepare(input)?;
        let batch = input.dims()[0];
        let (n, mut resolved) = self.units(&input, targets)?;
        let (mut scores, mut outputs) = (Vec::new(), Vec::new());
        let mut bias_points: Option<usize> = None;
        for start in (0..n).step_by(units_per_pass) {
            let len = units_per_pass.min(n - start);
            let leaf = repeat_each(input.clone(), len).autodiff().require_grad();
            let mode = if with_biases {
                Mode::Biases
            } else {
                Mode::Pass
            };
            let mut trace = Trace::<M::Tap, D>::with_mode(mode);
            let logits = self.run(leaf.clone(), &mut trace);
            if let Err(e) = self.check_logits(&logits, batch * len) {
                discard(logits);
                return Err(e);
            }
            if with_biases && trace.biases.is_empty() {
                discard(logits);
                return Err(Error::NoBiasPoints);
            }
            let (selected, grads) =
                select_and_backward(&logits, targets, &mut resolved, start..start + len)?;
            let gradient = leaf
                .grad(&grads)
                .unwrap_or_else(|| leaf.clone().inner().zeros_like());
            if *bias_points.get_or_insert(trace.biases.len()) != trace.biases.len() {
                return Err(Error::config(
                    "bias points",
                    "the forward pass reported a different number of bias points between passes",
                ));
            }
            let points = trace
                .biases
                .iter()
                .map(|p| {
                    let g = p
                        .leaf
                        .grad(&grads)
                        .unwrap_or_else(|| p.leaf.clone().inner().zeros_like());
                    (p.bias.clone(), g)
                })
                .collect();
            // Nothing else may hold the gradients: `each` may reduce them in place.
            drop(grads);
            drop(trace);
            outputs.push(each(len, gradient, points)?);
            scores.push(selected);
        }
        let resolved = resolved.expect("at least one pass ran");
        Ok((
            Tensor::cat(scores, 1),
            resolved.tensor(&input.device()),
            outputs,
        ))
    }
}

/// Ends a recorded graph that will not be used: Burn frees a graph only in
/// a backward pass, so one left behind would leak.
fn discard(logits: Tensor<2>) {
    if logits.is_tracked() {
        let _ = logits.sum().backward();
    }
}

fn check_per_pass(units_per_pass: usize) -> Result<()> {
    if units_per_pass == 0 {
        return Err(Error::config("units_per_pass", "must be at least 1"));
    }
    Ok(())
}

/// Gathers the selected scores of one pass over `columns` of the targets
/// (logits `[B·n, L]`, sample-major) and backpropagates their sum.
///
/// Returns the scores `[B, n]` (plain) and the gradients. Targets are
/// resolved on the first pass, from the logits of each sample's first copy.
fn select_and_backward(
    logits: &Tensor<2>,
    targets: &Targets,
    resolved: &mut Option<Resolved>,
    columns: std::ops::Range<usize>,
) -> Result<(Tensor<2>, burn::tensor::Gradients)> {
    let n = columns.len();
    let rows = logits.dims()[0];
    let batch = rows / n;
    if resolved.is_none() {
        let firsts = take_rows(logits.clone().detach().without_autodiff(), batch, n);
        match targets.resolve(&firsts) {
            Ok(r) => *resolved = Some(r),
            Err(e) => {
                discard(logits.clone());
                return Err(e);
            }
        }
    }
    let resolved = resolved.as_ref().expect("resolved above");
    let index = resolved.column_slice(columns, &logits.device());
    let selected = logits.clone().gather(1, index);
    let grads = selected.clone().sum().backward();
    let scores = selected.detach().without_autodiff().reshape([batch, n]);
    Ok((scores, grads))
}
