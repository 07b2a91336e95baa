//! Per-input-channel attributions: what the input-attribution methods
//! (saliency, Input×Gradient, Integrated Gradients, Occlusion) compute
//! before their channels are reduced to a map.

use burn::prelude::*;

use crate::error::Result;
use crate::explainable::Explainable;
use crate::explainer::Explanation;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, rows_to_maps, unflatten_spatial};

/// How the channels of an attribution (or of a layer, for
/// [`FullGrad`](crate::FullGrad)) become one map.
///
/// Captum returns attributions per input channel; to keep them, call
/// [`Attributor::attribute`] instead of `explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChannelReduction {
    /// The mean over channels (keras-explainable, the FullGrad paper's code).
    #[default]
    Mean,
    /// The sum over channels (pytorch-grad-cam's FullGrad; keeps
    /// completeness: the map sums to what the channels sum to).
    Sum,
    /// The largest value over channels.
    Max,
    /// The sum of absolute values over channels.
    AbsSum,
    /// The largest absolute value over channels (Simonyan et al.'s
    /// saliency map: `max_c |∂s/∂x_c|`).
    AbsMax,
}

impl ChannelReduction {
    /// Reduces `[R, C, ...spatial]` to `[R, 1, ...spatial]`.
    #[must_use]
    pub fn apply<const D: usize>(self, values: Tensor<D>) -> Tensor<D> {
        let dims = values.dims();
        let flat = flatten_spatial(values);
        let reduced = match self {
            Self::Mean => flat.mean_dim(1),
            Self::Sum => flat.sum_dim(1),
            Self::Max => flat.max_dim(1),
            Self::AbsSum => flat.abs().sum_dim(1),
            Self::AbsMax => flat.abs().max_dim(1),
        };
        unflatten_spatial(reduced, &dims[2..])
    }
}

/// Attributions per input channel, with the scores they explain.
///
/// For `B` samples and `N` units per sample: `scores` and `indices` are
/// `[B, N]` as in an [`Explanation`], and `values` is `[B·N, C, ...spatial]`,
/// row `b·N + n` the attribution of unit `n` of sample `b` (captum's
/// `[B, C, ...]` output, one per unit).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attribution<const D: usize> {
    /// The selected raw model outputs, `[B, N]`.
    pub scores: Tensor<2>,
    /// The unit each attribution explains, `[B, N]`.
    pub indices: Tensor<2, Int>,
    /// One attribution per sample and unit, `[B·N, C, ...spatial]`.
    pub values: Tensor<D>,
}

impl<const D: usize> Attribution<D> {
    /// An attribution from its parts (for methods written outside the crate).
    pub fn new(scores: Tensor<2>, indices: Tensor<2, Int>, values: Tensor<D>) -> Self {
        Self {
            scores,
            indices,
            values,
        }
    }

    /// One map per sample and unit, `[B, N, ...spatial]`, reducing the
    /// channels with `reduction`.
    pub fn reduce(self, reduction: ChannelReduction) -> Explanation<D> {
        let batch = self.scores.dims()[0];
        Explanation {
            maps: rows_to_maps(reduction.apply(self.values), batch),
            scores: self.scores,
            indices: self.indices,
        }
    }
}

/// An input-attribution method, called as [`Explainer`](crate::Explainer)s
/// are, that can return its attributions per input channel.
pub trait Attributor<M: Explainable<D>, const D: usize> {
    /// Attributes `targets` of `input` to every input element.
    ///
    /// # Errors
    /// As the method's [`explain`](crate::Explainer::explain).
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Attribution<D>>;
}

impl<A: Attributor<M, D> + ?Sized, M: Explainable<D>, const D: usize> Attributor<M, D> for &A {
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Attribution<D>> {
        (**self).attribute(probe, input, targets)
    }
}

/// `Explainer` for an [`Attributor`] with a `reduction` field: the
/// attribution reduced over channels, and the post-processing `filter`
/// (the maps are already at the input's resolution).
macro_rules! explain_by_reduction {
    ($name:ty, $filter:expr, $doc:literal) => {
        impl<M: crate::Explainable<D>, const D: usize> crate::Explainer<M, D> for $name {
            fn explain(
                &self,
                probe: &crate::Probe<M, D>,
                input: burn::prelude::Tensor<D>,
                targets: &crate::Targets,
            ) -> crate::Result<crate::Explanation<D>> {
                use crate::Attributor;
                Ok(self
                    .attribute(probe, input, targets)?
                    .reduce(self.reduction))
            }

            #[doc = $doc]
            fn postprocessing(&self) -> crate::Postprocessing {
                crate::Postprocessing::new(Some($filter), false)
            }
        }
    };
}

pub(crate) use explain_by_reduction;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_over_channels() {
        let device = Device::flex();
        // One row, two channels, two positions.
        let v = Tensor::<3>::from_floats([[[1.0, -4.0], [-3.0, 2.0]]], &device);
        let cases = [
            (ChannelReduction::Mean, [-1.0, -1.0]),
            (ChannelReduction::Sum, [-2.0, -2.0]),
            (ChannelReduction::Max, [1.0, 2.0]),
            (ChannelReduction::AbsSum, [4.0, 6.0]),
            (ChannelReduction::AbsMax, [3.0, 4.0]),
        ];
        for (r, expected) in cases {
            let expected = Tensor::<3>::from_floats([[expected]], &device);
            r.apply(v.clone())
                .into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        }
    }
}
