//! The method side: a prepared model with its tap, and the forward and
//! backward passes every method is built from. The only code in the crate
//! that runs autodiff.

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use burn::module::Module;
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::{Explainable, Mode, Trace};
use crate::output::Output;
use crate::targets::{Resolved, Targets};
use crate::tensor_ops::{cat_units, check_finite, check_not_empty, repeat_each};

/// Scores, activation and gradients at a tap, for `B` samples and `N` units.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// A pass's bias points: `(bias [K_l], gradient [rows, K_l, ...])` in forward order.
pub(crate) type BiasGradients<const D: usize> = Vec<(Tensor<1>, Tensor<D>)>;

/// A model prepared for explanation, with the tap point the CAM methods use.
///
/// A probe holds an inference-mode copy of the model ([`Module::valid`]):
/// BatchNorm uses its running statistics, dropout is off, and nothing an
/// explainer does can change the caller's model. Cloning a probe shares the
/// copy.
#[must_use]
pub struct Probe<M: Explainable<D>, const D: usize> {
    model: Arc<M>,
    tap: Option<M::Tap>,
    on_pass: Option<PassHook>,
}

impl<M: Explainable<D>, const D: usize> Clone for Probe<M, D> {
    fn clone(&self) -> Self {
        Self {
            model: self.model.clone(),
            tap: self.tap,
            on_pass: self.on_pass.clone(),
        }
    }
}

impl<M: Explainable<D> + Debug, const D: usize> Debug for Probe<M, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("model", &self.model)
            .field("tap", &self.tap)
            .field("on_pass", &self.on_pass.is_some())
            .finish()
    }
}

/// A callback run after every pass through the model.
#[derive(Clone)]
struct PassHook(Arc<dyn Fn(usize) + Send + Sync>);

impl<M: Explainable<D>, const D: usize> Probe<M, D> {
    /// Wraps an inference-mode copy of `model`, with no tap selected.
    pub fn new(model: &M) -> Self
    where
        M: Module,
    {
        Self::prepared(model.valid())
    }

    /// Wraps `model`, taken by value, in inference mode ([`Module::valid`]).
    pub fn from_model(model: M) -> Self
    where
        M: Module,
    {
        Self::prepared(model.valid())
    }

    /// Wraps a model the caller has already put in inference mode.
    pub(crate) fn prepared(model: M) -> Self {
        Self {
            model: Arc::new(model),
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

    /// The model's forward pass, with a panic turned into an error naming
    /// `caller` (the shape of the input the caller gave), the rows of the
    /// output checked and the pass reported to the hook.
    fn run(
        &self,
        input: Tensor<D>,
        trace: &mut Trace<M::Tap, D>,
        rows: usize,
        caller: &[usize],
    ) -> Result<Output> {
        let passed = input.dims()[0];
        let output = catch_unwind(AssertUnwindSafe(|| {
            self.model.forward_traced(input, &mut *trace)
        }))
        .map_err(|panic| Error::ModelPanicked {
            shape: caller.to_vec(),
            message: panic_message(panic),
        })?;
        if let Some(hook) = &self.on_pass {
            (hook.0)(passed);
        }
        let dims = output.dims();
        if dims[0] != rows {
            discard(&output);
            return Err(Error::Shape {
                what: "model output rows (is a tap declared a cut that is not one?)",
                expected: vec![rows],
                actual: dims.to_vec(),
            });
        }
        if let Err(e) = check_not_empty("model output", dims) {
            discard(&output);
            return Err(e);
        }
        Ok(output)
    }

    /// Checks an input and moves it off any autodiff graph.
    pub(crate) fn prepare(&self, input: Tensor<D>) -> Result<Tensor<D>> {
        let dims = input.dims();
        self.check_input(&dims)?;
        let input = input.detach().without_autodiff();
        check_finite("input", &input)?;
        Ok(input)
    }

    /// Checks that the input shape is not empty and that the model accepts it.
    pub(crate) fn check_input(&self, dims: &[usize]) -> Result<()> {
        check_not_empty("input", dims)?;
        self.model
            .check_input(dims)
            .map_err(|reason| Error::InputRejected {
                shape: dims.to_vec(),
                reason,
            })
    }

    /// The plain forward pass.
    ///
    /// # Errors
    /// An empty, non-finite or rejected input, or a forward pass that panics.
    pub fn forward(&self, input: Tensor<D>) -> Result<Output> {
        let input = self.prepare(input)?;
        let dims = input.dims();
        self.run(input, &mut Trace::untraced(), dims[0], &dims)
    }

    /// The plain forward pass of an input already checked by the caller,
    /// errors naming `caller`.
    pub(crate) fn forward_unchecked(&self, input: Tensor<D>, caller: &[usize]) -> Result<Output> {
        let rows = input.dims()[0];
        self.run(input, &mut Trace::untraced(), rows, caller)
    }

    /// One forward pass recording the activation at the selected tap: the
    /// output and the activation `[B, K, ...spatial]`. No autodiff.
    ///
    /// # Errors
    /// No tap selected, the tap not reached exactly once, or a bad input.
    pub fn activations(&self, input: Tensor<D>) -> Result<(Output, Tensor<D>)> {
        let tap = self.require_tap("this method")?;
        let input = self.prepare(input)?;
        let dims = input.dims();
        let mut trace = Trace::with_mode(Mode::Capture(tap));
        let output = self.run(input, &mut trace, dims[0], &dims)?;
        trace.check_reached(tap)?;
        let activation = trace.activation.take().expect("reached tap was recorded");
        Ok((output, activation))
    }

    /// One forward pass in which the activation at the selected tap is
    /// replaced by `replacement` (`[R, K, ...spatial_tap]`), for an input
    /// already checked by the caller, errors naming `caller`. At a cut the
    /// input may hold fewer rows than the replacement (the layers after the
    /// tap see only the replacement); elsewhere it must hold `R` rows. No
    /// autodiff.
    pub(crate) fn forward_replaced_unchecked(
        &self,
        input: Tensor<D>,
        replacement: Tensor<D>,
        caller: &[usize],
    ) -> Result<Output> {
        let tap = self.require_tap("this method")?;
        let rows = replacement.dims()[0];
        let mut trace = Trace::with_mode(Mode::Replace(tap));
        trace.replacement = Some(replacement);
        let output = self.run(input, &mut trace, rows, caller)?;
        trace.check_reached(tap)?;
        Ok(output)
    }

    /// The forward pass with the activation at the selected tap replaced by
    /// `replacement` (`[R, K, ...spatial_tap]`): the model's output for an
    /// edited activation (what Ablation-CAM measures). At a cut
    /// ([`Explainable::is_cut`]) `input` may hold fewer rows than the
    /// replacement: each of its rows then stands for `R / rows` consecutive
    /// rows of the replacement (sample-major, as the probe replicates target
    /// units), so one row serves any number of edits of one sample.
    /// Elsewhere it must hold `R` rows, whose values the skip connections
    /// carry. No autodiff.
    ///
    /// # Errors
    /// No tap selected, the tap not reached exactly once, a bad input, `R`
    /// not a multiple of the input's rows, or a forward pass that panics (a
    /// replacement of the wrong shape).
    pub fn forward_with_tap(&self, input: Tensor<D>, replacement: Tensor<D>) -> Result<Output> {
        let input = self.prepare(input)?;
        let dims = input.dims();
        check_not_empty("tap replacement", &replacement.dims())?;
        let rows = replacement.dims()[0];
        if !rows.is_multiple_of(dims[0]) {
            return Err(Error::Shape {
                what: "tap replacement rows (a multiple of the input's)",
                expected: vec![dims[0]],
                actual: vec![rows],
            });
        }
        let replacement = replacement.detach().without_autodiff();
        self.forward_replaced_unchecked(input, replacement, &dims)
    }

    /// One forward pass recording the attention weights the model reports
    /// through [`Trace::attention`], in forward order, each
    /// `[B, heads, queries, keys]`. No autodiff.
    ///
    /// # Errors
    /// A bad input, or a model that reports no attention weights.
    pub fn attention_weights(&self, input: Tensor<D>) -> Result<(Output, Vec<Tensor<4>>)> {
        let input = self.prepare(input)?;
        let dims = input.dims();
        let mut trace = Trace::with_mode(Mode::Attention);
        let output = self.run(input, &mut trace, dims[0], &dims)?;
        if trace.attention.is_empty() {
            return Err(Error::NoAttention);
        }
        Ok((output, std::mem::take(&mut trace.attention)))
    }

    /// Resolves `targets` for `input`, running a forward pass only when the
    /// number of units cannot be known without one ([`Targets::all`]).
    fn units(&self, input: &Tensor<D>, targets: &Targets) -> Result<(usize, Option<Resolved>)> {
        targets.validate(input.dims()[0])?;
        match targets.units_per_sample() {
            Some(n) => Ok((n, None)),
            None => {
                let dims = input.dims();
                let output = self.run(input.clone(), &mut Trace::untraced(), dims[0], &dims)?;
                let resolved = targets.resolve(&output)?;
                Ok((resolved.units, Some(resolved)))
            }
        }
    }

    /// Scores, activation and the gradients of each selected score with
    /// respect to the activation at the selected tap.
    ///
    /// The layers before the tap run once per pass without autodiff and only
    /// the layers after it are differentiated. At a cut
    /// ([`Explainable::is_cut`]) the activation is replicated once per unit,
    /// so one backward pass serves every sample and up to `units_per_pass`
    /// units; elsewhere each pass explains one unit, the tensors that bypass
    /// the tap keeping their forward values.
    ///
    /// # Cost
    /// At a cut, `⌈N / units_per_pass⌉` forward passes of the batch and as
    /// many backward passes through the layers after the tap; elsewhere `N`
    /// of each (plus one forward for [`Targets::all`]).
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
        let per_pass = if self.model.is_cut(tap) {
            units_per_pass
        } else {
            1
        };
        let input = self.prepare(input)?;
        let batch = input.dims()[0];
        let (n, mut resolved) = self.units(&input, targets)?;
        let mut activation = None;
        let (mut scores, mut gradients) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(per_pass) {
            let len = per_pass.min(n - start);
            let mut trace = Trace::with_mode(Mode::Leaf(tap, len));
            let output = self.run(input.clone(), &mut trace, batch * len, &input.dims())?;
            if let Err(e) = trace.check_reached(tap) {
                discard(&output);
                return Err(e);
            }
            let leaf = trace.leaf.take().expect("reached tap made a leaf");
            let (selected, grads) =
                select_and_backward(&output, targets, &mut resolved, start..start + len)?;
            gradients.push(gradient_of(&leaf, grads.as_ref()));
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
    /// `B · min(N, units_per_pass)` samples (plus one forward for [`Targets::all`]).
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
        mut each: impl FnMut(usize, Tensor<D>, BiasGradients<D>) -> Result<T>,
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
            let output = self.run(leaf.clone(), &mut trace, batch * len, &input.dims())?;
            if with_biases && trace.biases.is_empty() {
                discard(&output);
                return Err(Error::NoBiasPoints);
            }
            let (selected, grads) =
                select_and_backward(&output, targets, &mut resolved, start..start + len)?;
            let gradient = gradient_of(&leaf, grads.as_ref());
            let expected = *bias_points.get_or_insert(trace.biases.len());
            if expected != trace.biases.len() {
                return Err(Error::BiasPointsChanged {
                    first: expected,
                    now: trace.biases.len(),
                });
            }
            let points = trace
                .biases
                .iter()
                .map(|p| (p.bias.clone(), gradient_of(&p.leaf, grads.as_ref())))
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

/// A backward rule for ReLUs: the gradient at a ReLU's input from the
/// gradient at its output and its input's values.
pub(crate) type ReluRule<const D: usize> = fn(Tensor<D>, Tensor<D>) -> Tensor<D>;

impl<M: Explainable<D>, const D: usize> Probe<M, D> {
    /// Scores and the input gradients of each selected score with every
    /// ReLU's backward replaced by `rule` (guided backpropagation,
    /// deconvolution), for the ReLUs the model applies with [`Trace::relu`].
    ///
    /// The forward pass cuts the graph at every ReLU and branch point (its
    /// output becomes a leaf); the backward pass then runs segment by
    /// segment, last point first, applying `rule` between segments. The
    /// segments are disjoint, so this costs about one backward pass, in as
    /// many calls as points.
    ///
    /// Returns the scores `[B, N]`, the units `[B, N]` and the gradients
    /// `[B·N, C, ...]`, row `b·N + n`.
    pub(crate) fn relu_rule_gradients(
        &self,
        input: Tensor<D>,
        targets: &Targets,
        units_per_pass: usize,
        rule: ReluRule<D>,
        method: &'static str,
    ) -> Result<(Tensor<2>, Tensor<2, Int>, Tensor<D>)> {
        check_per_pass(units_per_pass)?;
        let input = self.prepare(input)?;
        let batch = input.dims()[0];
        let (n, mut resolved) = self.units(&input, targets)?;
        let (mut scores, mut gradients) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(units_per_pass) {
            let len = units_per_pass.min(n - start);
            let leaf = repeat_each(input.clone(), len).autodiff().require_grad();
            let mut trace = Trace::<M::Tap, D>::with_mode(Mode::Relus);
            let output = self.run(leaf.clone(), &mut trace, batch * len, &input.dims())?;
            let mut points = std::mem::take(&mut trace.relus);
            if points.is_empty() {
                discard(&output);
                return Err(Error::NoReluPoints { method });
            }
            let (selected, grads) =
                select_and_backward(&output, targets, &mut resolved, start..start + len)?;
            scores.push(selected);
            // Gradients reaching each ReLU output, and the input, so far.
            let mut at: Vec<Option<Tensor<D>>> = vec![None; points.len()];
            let mut at_input: Option<Tensor<D>> = None;
            let collect = |grads: &burn::tensor::Gradients,
                           points: &[crate::explainable::ReluPoint<D>],
                           at: &mut Vec<Option<Tensor<D>>>,
                           at_input: &mut Option<Tensor<D>>| {
                for (slot, p) in at.iter_mut().zip(points) {
                    if let Some(g) = p.leaf.grad(grads) {
                        *slot = Some(slot.take().map_or(g.clone(), |s| s + g));
                    }
                }
                if let Some(g) = leaf.grad(grads) {
                    *at_input = Some(at_input.take().map_or(g.clone(), |s| s + g));
                }
            };
            if let Some(g) = &grads {
                collect(g, &points, &mut at, &mut at_input);
            }
            drop(grads);
            while let Some(point) = points.pop() {
                let reached = at.pop().flatten();
                let plain = point.input.clone().detach().without_autodiff();
                // A ReLU the scores do not reach still has its graph freed.
                let upstream = match reached {
                    Some(g) if point.branch => g,
                    Some(g) => rule(g, plain),
                    None => plain.zeros_like(),
                };
                let root = (point.input * upstream.autodiff()).sum();
                let shape = input.dims().to_vec();
                let grads =
                    catch_unwind(AssertUnwindSafe(|| root.backward())).map_err(|panic| {
                        let message = panic_message(panic);
                        let hint = if message.contains("already been consumed") {
                            " (a tensor that several layers read after a ReLU must pass \
                             through Trace::branch)"
                        } else {
                            ""
                        };
                        Error::ModelPanicked {
                            shape,
                            message: format!("in the guided backward pass: {message}{hint}"),
                        }
                    })?;
                collect(&grads, &points, &mut at, &mut at_input);
            }
            gradients.push(at_input.unwrap_or_else(|| leaf.clone().inner().zeros_like()));
        }
        let resolved = resolved.expect("at least one pass ran");
        Ok((
            Tensor::cat(scores, 1),
            resolved.tensor(&input.device()),
            cat_units(gradients, batch),
        ))
    }
}

/// The gradient of a leaf, zeros where the scores do not reach it.
fn gradient_of<const D: usize>(
    leaf: &Tensor<D>,
    grads: Option<&burn::tensor::Gradients>,
) -> Tensor<D> {
    grads
        .and_then(|g| leaf.grad(g))
        .unwrap_or_else(|| leaf.clone().inner().zeros_like())
}

/// The text of a caught panic.
fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with no message".to_string()
    }
}

/// Ends a recorded graph that will not be used: Burn frees a graph only in
/// a backward pass, so one left behind would leak.
fn discard(output: &Output) {
    if output.is_tracked() {
        let _ = catch_unwind(AssertUnwindSafe(|| output.flat().sum().backward()));
    }
}

fn check_per_pass(units_per_pass: usize) -> Result<()> {
    if units_per_pass == 0 {
        return Err(Error::config("units_per_pass", "must be at least 1"));
    }
    Ok(())
}

/// Scores one pass over `columns` of the targets (an output of `B·n` rows,
/// sample-major) and backpropagates their sum.
///
/// Returns the scores `[B, n]` (plain) and the gradients. Targets are
/// resolved on the first pass, from the output of each sample's first copy.
fn select_and_backward(
    output: &Output,
    targets: &Targets,
    resolved: &mut Option<Resolved>,
    columns: std::ops::Range<usize>,
) -> Result<(Tensor<2>, Option<burn::tensor::Gradients>)> {
    let n = columns.len();
    if resolved.is_none() {
        match targets.resolve(&output.first_copies(n)) {
            Ok(r) => *resolved = Some(r),
            Err(e) => {
                discard(output);
                return Err(e);
            }
        }
    }
    let resolved = resolved.as_ref().expect("resolved above");
    let selected = match resolved.scores_diagonal(output, columns) {
        Ok(s) => s,
        Err(e) => {
            discard(output);
            return Err(e);
        }
    };
    if !selected.is_tracked() {
        // The scores do not depend on the tap or the input (a constant
        // target function): every gradient is zero.
        return Ok((selected, None));
    }
    let shape = output.dims().to_vec();
    let grads =
        catch_unwind(AssertUnwindSafe(|| selected.clone().sum().backward())).map_err(|panic| {
            Error::ModelPanicked {
                shape,
                message: format!("in the backward pass: {}", panic_message(panic)),
            }
        })?;
    let scores = selected.detach().without_autodiff();
    Ok((scores, Some(grads)))
}
