//! Input × Gradient.

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor, ChannelReduction, explain_by_reduction};
use crate::explainable::Explainable;
use crate::filters::Filter;
use crate::methods::saliency::units_per_pass;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{cat_units, repeat_each};

/// Input × Gradient: each input element times the score's gradient with
/// respect to it, the first-order contribution of that element.
///
/// Shrikumar et al., *Not Just a Black Box: Learning Important Features
/// Through Propagating Activation Differences*, 2016.
///
/// `attribution[b, n] = x[b] ⊙ ∂s[b, n] / ∂x[b]` per input channel
/// (captum's `InputXGradient`), reduced over channels by the sum by
/// default (the map then sums to what the channels sum to).
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]` (per channel from
///   [`attribute`](Attributor::attribute): `[B·N, C, ...spatial]`)
///
/// # Cost
/// As [`Saliency`](crate::Saliency): the input replicated once per unit,
/// `⌈N / u⌉` forward and backward passes.
///
/// # Errors
/// `units_per_pass == 0`, and the input and target errors of every method.
/// Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, InputXGradient, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = InputXGradient::new().explain(&Probe::new(&model), x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct InputXGradient {
    /// Target units per forward/backward pass; `None` (the default) picks
    /// as many as keep a pass within [`ROWS_PER_PASS`](crate::methods::ROWS_PER_PASS) rows.
    pub units_per_pass: Option<usize>,
    /// How the channels become one map (default the sum).
    pub reduction: ChannelReduction,
}

impl Default for InputXGradient {
    fn default() -> Self {
        Self::new()
    }
}

impl InputXGradient {
    /// Channels summed, units per pass chosen from the batch size.
    pub fn new() -> Self {
        Self {
            units_per_pass: None,
            reduction: ChannelReduction::Sum,
        }
    }

    /// Sets the units per pass.
    pub fn with_units_per_pass(mut self, units_per_pass: usize) -> Self {
        self.units_per_pass = Some(units_per_pass);
        self
    }

    /// Sets the channel reduction.
    pub fn with_reduction(mut self, reduction: ChannelReduction) -> Self {
        self.reduction = reduction;
        self
    }
}

impl<M: Explainable<D>, const D: usize> Attributor<M, D> for InputXGradient {
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Attribution<D>> {
        let batch = input.dims()[0];
        let per_pass = units_per_pass(self.units_per_pass, batch);
        let plain = input.clone().detach().without_autodiff();
        let (scores, indices, values) =
            probe.input_gradient_passes(input, targets, per_pass, false, |units, g, _| {
                Ok(g * repeat_each(plain.clone(), units))
            })?;
        Ok(Attribution::new(scores, indices, cat_units(values, batch)))
    }
}

explain_by_reduction!(
    InputXGradient,
    Filter::AbsoluteNormalize,
    "Absolute values min-max normalised, at the input's resolution."
);
