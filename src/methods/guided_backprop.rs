//! Guided backpropagation and deconvolution.

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor, ChannelReduction, explain_by_reduction};
use crate::explainable::Explainable;
use crate::filters::Filter;
use crate::methods::saliency::units_per_pass;
use crate::probe::Probe;
use crate::targets::Targets;

/// Guided backpropagation: the input gradient with every ReLU passing back
/// only positive gradients, and only where its input was positive.
///
/// Springenberg et al., *Striving for Simplicity: The All Convolutional
/// Net*, ICLR Workshops 2015.
///
/// The backward rule of each ReLU `y = max(x, 0)` becomes
/// `∂/∂x = max(∂/∂y, 0) ⊙ 1[x > 0]` (captum's `GuidedBackprop`); every other
/// layer's backward is unchanged. Per input channel, reduced by the
/// largest absolute value by default.
///
/// **What the model must do.** Burn has no backward hooks: the rule reaches
/// the ReLUs the model applies through [`Trace::relu`](crate::Trace::relu)
/// (every ReLU call, also a reused ReLU module), as
/// [`models::resnet`](crate::models) does. A model that reports none gets
/// [`Error::NoReluPoints`](crate::Error::NoReluPoints); ReLUs applied
/// otherwise keep their plain backward.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]` (per channel from
///   [`attribute`](Attributor::attribute): `[B·N, C, ...spatial]`)
///
/// # Cost
/// As [`Saliency`](crate::Saliency): the input replicated once per unit,
/// `⌈N / u⌉` forward passes and backward passes, each backward run segment
/// by segment between the ReLUs (one call per ReLU).
///
/// # Errors
/// A model that reports no ReLU points, `units_per_pass == 0`, and the
/// input and target errors of every method. Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Attributor, GuidedBackprop, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let a = GuidedBackprop::new().attribute(&Probe::new(&model), x, &Targets::top_k(2))?;
/// assert_eq!(a.values.dims(), [2, 3, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct GuidedBackprop {
    /// Target units per forward/backward pass; `None` (the default) picks
    /// as many as keep a pass within [`ROWS_PER_PASS`](crate::methods::ROWS_PER_PASS) rows.
    pub units_per_pass: Option<usize>,
    /// How the channels become one map (default the largest absolute value).
    pub reduction: ChannelReduction,
}

/// Deconvolution (the deconvnet's backward): the input gradient with every
/// ReLU passing back only positive gradients, whatever its input was.
///
/// Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*,
/// ECCV 2014.
///
/// The backward rule of each ReLU becomes `∂/∂x = max(∂/∂y, 0)` (captum's
/// `Deconvolution`); otherwise as [`GuidedBackprop`], which documents what
/// the model must do, the shapes, cost and errors.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Deconvolution, Explainer, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = Deconvolution::new().explain(&Probe::new(&model), x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct Deconvolution {
    /// Target units per forward/backward pass (see [`GuidedBackprop`]).
    pub units_per_pass: Option<usize>,
    /// How the channels become one map (default the largest absolute value).
    pub reduction: ChannelReduction,
}

/// `max(g, 0) ⊙ 1[x > 0]`.
fn guided<const D: usize>(g: Tensor<D>, x: Tensor<D>) -> Tensor<D> {
    g.clamp_min(0.0) * x.greater_elem(0.0).float()
}

/// `max(g, 0)`.
fn deconvolution<const D: usize>(g: Tensor<D>, _x: Tensor<D>) -> Tensor<D> {
    g.clamp_min(0.0)
}

macro_rules! relu_rule_method {
    ($name:ident, $rule:ident, $label:literal) => {
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            /// Channels reduced by the largest absolute value, units per
            /// pass chosen from the batch size.
            pub fn new() -> Self {
                Self {
                    units_per_pass: None,
                    reduction: ChannelReduction::AbsMax,
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

        impl<M: Explainable<D>, const D: usize> Attributor<M, D> for $name {
            fn attribute(
                &self,
                probe: &Probe<M, D>,
                input: Tensor<D>,
                targets: &Targets,
            ) -> crate::Result<Attribution<D>> {
                let per_pass = units_per_pass(self.units_per_pass, input.dims()[0]);
                let (scores, indices, values) =
                    probe.relu_rule_gradients(input, targets, per_pass, $rule, $label)?;
                Ok(Attribution::new(scores, indices, values))
            }
        }

        explain_by_reduction!(
            $name,
            Filter::Normalize,
            "Min-max normalised, at the input's resolution."
        );
    };
}

relu_rule_method!(GuidedBackprop, guided, "guided backpropagation");
relu_rule_method!(Deconvolution, deconvolution, "deconvolution");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let device = Device::flex();
        let g = Tensor::<1>::from_floats([1.0, -1.0, 2.0, -2.0], &device);
        let x = Tensor::<1>::from_floats([1.0, 1.0, -1.0, -1.0], &device);
        let expected = Tensor::<1>::from_floats([1.0, 0.0, 0.0, 0.0], &device);
        guided(g.clone(), x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        let expected = Tensor::<1>::from_floats([1.0, 0.0, 2.0, 0.0], &device);
        deconvolution(g, x)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
