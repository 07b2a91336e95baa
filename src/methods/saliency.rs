//! Input gradients (saliency).

use std::fmt;
use std::sync::Arc;

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor, ChannelReduction};
use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, unflatten_spatial};

/// A function applied to gradients before they are averaged over channels.
#[derive(Clone)]
#[non_exhaustive]
pub enum GradientFilter {
    /// Keep the signed gradients.
    Identity,
    /// A built-in filter, applied per `(row, channel)` over the spatial axes.
    Filter(Filter),
    /// A custom function of the gradients flattened to `[rows, C, P]`
    /// (`P` positions); it must return the same shape.
    Custom(Arc<dyn Fn(Tensor<3>) -> Tensor<3> + Send + Sync>),
}

impl fmt::Debug for GradientFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Identity => f.write_str("Identity"),
            Self::Filter(x) => write!(f, "Filter({x:?})"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl GradientFilter {
    /// Applies the filter to `[rows, C, P]`.
    pub(crate) fn apply(&self, gradients: Tensor<3>) -> crate::Result<Tensor<3>> {
        let dims = gradients.dims();
        let out = match self {
            Self::Identity => gradients,
            Self::Filter(f) => f.apply(gradients),
            Self::Custom(f) => f(gradients),
        };
        if out.dims() != dims {
            return Err(Error::Shape {
                what: "gradient filter output",
                expected: dims.to_vec(),
                actual: out.dims().to_vec(),
            });
        }
        Ok(out)
    }
}

/// Input gradients ("vanilla" saliency): the filtered gradient of each score
/// with respect to the input, reduced over the input channels (by default
/// averaged; [`Attributor::attribute`](crate::Attributor::attribute) keeps
/// them, as captum's `Saliency` does).
///
/// Simonyan et al., *Deep Inside Convolutional Networks: Visualising Image
/// Classification Models and Saliency Maps*, ICLR Workshops 2014.
///
/// `maps[b, n] = mean_c f(∂s[b, n] / ∂x[b, c])` with `f = |·|` by default
/// (captum's `Saliency(abs=True)`; `GradientFilter::Identity` is
/// `abs=False`), or another [`ChannelReduction`]:
/// [`AbsMax`](ChannelReduction::AbsMax) is the paper's `max_c |·|`.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///
/// # Cost
/// The input is replicated once per unit: `⌈N / u⌉` forward and backward
/// passes of a batch of `B · min(N, u)`, with `u` the units per pass. By
/// default `u` keeps a pass within [`ROWS_PER_PASS`] rows (and is at least
/// 1): replicating a batch further made each row slower on a CPU (ResNet-50,
/// batch 8, 5 units, 224²: 1.01× five single-unit passes at 8 rows per
/// pass, 1.02× at 16, 1.22× at 40), while a small batch gains from it.
///
/// # Errors
/// `units_per_pass == 0`, a custom filter that changes the shape, and the
/// input and target errors of every method. Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, Saliency, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = Saliency::new().explain(&probe, x, &Targets::indices([[0, 2]]))?;
/// assert_eq!(e.maps.dims(), [1, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct Saliency {
    /// Applied to the gradients before the channel mean (default `|·|`).
    pub filter: GradientFilter,
    /// Target units per forward/backward pass; `None` (the default) picks
    /// as many as keep a pass within [`ROWS_PER_PASS`] rows.
    pub units_per_pass: Option<usize>,
    /// How the filtered channels become one map (default the mean).
    pub reduction: ChannelReduction,
}

impl Default for Saliency {
    fn default() -> Self {
        Self::new()
    }
}

impl Saliency {
    /// Absolute gradients, units per pass chosen from the batch size.
    pub fn new() -> Self {
        Self {
            filter: GradientFilter::Filter(Filter::Absolute),
            units_per_pass: None,
            reduction: ChannelReduction::Mean,
        }
    }

    /// Sets the channel reduction.
    pub fn with_reduction(mut self, reduction: ChannelReduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets the gradient filter.
    pub fn with_filter(mut self, filter: GradientFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the units per pass.
    pub fn with_units_per_pass(mut self, units_per_pass: usize) -> Self {
        self.units_per_pass = Some(units_per_pass);
        self
    }
}

/// The rows (samples × units) an input-gradient pass holds by default.
pub const ROWS_PER_PASS: usize = 16;

/// The units per input-gradient pass: `explicit`, or as many as keep
/// `batch · units` within [`ROWS_PER_PASS`], at least one.
pub(crate) fn units_per_pass(explicit: Option<usize>, batch: usize) -> usize {
    explicit.unwrap_or_else(|| (ROWS_PER_PASS / batch.max(1)).max(1))
}

/// `mean_c f(g)`: `[R, C, ...spatial]` → `[R, 1, ...spatial]`.
pub fn channel_mean<const D: usize>(
    gradients: Tensor<D>,
    filter: &GradientFilter,
) -> crate::Result<Tensor<D>> {
    let dims = gradients.dims();
    let filtered = filter.apply(flatten_spatial(gradients))?;
    Ok(unflatten_spatial(filtered.mean_dim(1), &dims[2..]))
}

impl<M: Explainable<D>, const D: usize> Attributor<M, D> for Saliency {
    /// The filtered gradients per input channel.
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Attribution<D>> {
        let per_pass = units_per_pass(self.units_per_pass, input.dims()[0]);
        let g = probe.input_gradients(input, targets, per_pass, false)?;
        let dims = g.gradients.dims();
        let filtered = self.filter.apply(flatten_spatial(g.gradients))?;
        Ok(Attribution::new(
            g.scores,
            g.indices,
            unflatten_spatial(filtered, &dims[2..]),
        ))
    }
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for Saliency {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        Ok(self
            .attribute(probe, input, targets)?
            .reduce(self.reduction))
    }

    /// Min-max normalised, already at the input's resolution.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(Some(Filter::Normalize), false)
    }
}
