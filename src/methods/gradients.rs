//! Input gradients (saliency).

use std::fmt;
use std::sync::Arc;

use burn::prelude::*;

use crate::error::Error;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::probe::{Explainable, Probe};
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, rows_to_maps, unflatten_spatial};

/// A function applied to gradients before they are averaged over channels.
#[derive(Clone)]
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
/// with respect to the input, averaged over the input channels.
///
/// Simonyan et al., *Deep Inside Convolutional Networks: Visualising Image
/// Classification Models and Saliency Maps*, ICLR Workshops 2014.
///
/// `maps[b, n] = mean_c f(∂s[b, n] / ∂x[b, c])` with `f = |·|` by default.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///
/// # Cost
/// The input is replicated once per unit: `⌈N / units_per_pass⌉` forward and
/// backward passes of a batch of `B · min(N, units_per_pass)`.
///
/// # Errors
/// `units_per_pass == 0`, a custom filter that changes the shape, and the
/// input and target errors of every method. Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, Gradients, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = Gradients::new().explain(&probe, x, &Targets::indices([[0, 2]]))?;
/// assert_eq!(e.maps.dims(), [1, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gradients {
    /// Applied to the gradients before the channel mean (default `|·|`).
    pub filter: GradientFilter,
    /// Target units per forward/backward pass (default 16).
    pub units_per_pass: usize,
}

impl Default for Gradients {
    fn default() -> Self {
        Self::new()
    }
}

impl Gradients {
    /// Absolute gradients, 16 units per pass.
    pub fn new() -> Self {
        Self {
            filter: GradientFilter::Filter(Filter::Absolute),
            units_per_pass: 16,
        }
    }

    /// Sets the gradient filter.
    pub fn with_filter(mut self, filter: GradientFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the units per pass.
    pub fn with_units_per_pass(mut self, units_per_pass: usize) -> Self {
        self.units_per_pass = units_per_pass;
        self
    }
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

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for Gradients {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let g = probe.input_gradients(input, targets, self.units_per_pass, false)?;
        let batch = g.scores.dims()[0];
        let maps = rows_to_maps(channel_mean(g.gradients, &self.filter)?, batch);
        Ok(Explanation {
            scores: g.scores,
            indices: g.indices,
            maps,
        })
    }

    /// Min-max normalised, already at the input's resolution.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing {
            filter: Some(Filter::Normalize),
            resize: false,
        }
    }
}
