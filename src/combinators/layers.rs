//! Several tap points at once.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::pipeline::postprocess;
use crate::probe::Probe;
use crate::targets::Targets;

/// Explains at several tap points and averages the post-processed maps, as
/// pytorch-grad-cam does with `target_layers=[...]`.
///
/// For each tap `l` the wrapped explainer's maps are filtered
/// (`per_layer`, default [`Filter::PositiveScale`]: `max(·, 0)` then
/// `(x − min) / (1e-7 + max)`) and resized to the input; the result is
/// `aggregate(mean_l max(maps_l, 0))` (default [`Filter::Scale`]). With one
/// tap this is exactly pytorch-grad-cam's output for that layer.
/// [`run_layers`](Self::run_layers) also returns each layer's maps.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///
/// # Cost
/// The wrapped explainer once per tap. Scores and target indices are the
/// first tap's; the later taps explain the same units.
///
/// # Errors
/// An empty tap list, and every error of the wrapped explainer (each
/// naming its tap).
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, GradCam, Probe, Targets, combinators::Layers, testing::{TinyNet, TinyTap}};
///
/// let device = Device::flex();
/// let probe = Probe::new(&TinyNet::new(&device));
/// let layers = Layers::new(GradCam::new(), vec![TinyTap::Relu1, TinyTap::Relu2]);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let (e, per_layer) = layers.run_layers(&probe, x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [2, 1, 8, 8]);
/// assert_eq!(per_layer.len(), 2);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct Layers<E, T> {
    /// The explainer run at every tap.
    pub inner: E,
    /// The taps, in order.
    pub taps: Vec<T>,
    /// The filter applied to each layer's maps before resizing.
    pub per_layer: Option<Filter>,
    /// The filter applied to the mean of the layers' maps.
    pub aggregate: Option<Filter>,
}

impl<E, T> Layers<E, T> {
    /// `inner` at each of `taps`, with pytorch-grad-cam's post-processing.
    pub fn new(inner: E, taps: Vec<T>) -> Self {
        Self {
            inner,
            taps,
            per_layer: Some(Filter::PositiveScale),
            aggregate: Some(Filter::Scale),
        }
    }

    /// Sets the per-layer filter.
    pub fn with_per_layer(mut self, filter: Option<Filter>) -> Self {
        self.per_layer = filter;
        self
    }

    /// Sets the filter of the aggregated maps.
    pub fn with_aggregate(mut self, filter: Option<Filter>) -> Self {
        self.aggregate = filter;
        self
    }

    /// The aggregated explanation and each tap's post-processed maps
    /// `[B, N, ...spatial]`, in the order of the taps.
    ///
    /// # Errors
    /// See the type's docs.
    pub fn run_layers<M, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<(Explanation<D>, Vec<Tensor<D>>)>
    where
        M: Explainable<D, Tap = T>,
        T: Copy + PartialEq + std::fmt::Debug,
        E: Explainer<M, D>,
    {
        if self.taps.is_empty() {
            return Err(Error::config("layers", "the tap list is empty"));
        }
        let size = input.dims()[2..].to_vec();
        let mut first: Option<(Tensor<2>, Tensor<2, Int>, Targets)> = None;
        let mut per_layer = Vec::with_capacity(self.taps.len());
        for &tap in &self.taps {
            let layer_targets = first.as_ref().map_or(targets, |(_, _, t)| t);
            let e = self
                .inner
                .explain(&probe.clone().at(tap), input.clone(), layer_targets)
                .map_err(|e| Error::Pass {
                    pass: format!("layer {tap:?}"),
                    source: Box::new(e),
                })?;
            per_layer.push(postprocess(e.maps, self.per_layer, Some(&size), None)?);
            if first.is_none() {
                let fixed = targets.fixed(&e.indices)?;
                first = Some((e.scores, e.indices, fixed));
            }
        }
        let count = per_layer.len() as f64;
        let mean = per_layer
            .iter()
            .cloned()
            .map(|m| m.clamp_min(0.0))
            .reduce(|a, b| a + b)
            .expect("at least one tap")
            .div_scalar(count);
        let maps = postprocess(mean, self.aggregate, None, None)?;
        let (scores, indices, _) = first.expect("at least one tap");
        Ok((
            Explanation {
                scores,
                indices,
                maps,
            },
            per_layer,
        ))
    }
}

impl<E, M, const D: usize> Explainer<M, D> for Layers<E, M::Tap>
where
    E: Explainer<M, D>,
    M: Explainable<D>,
{
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Explanation<D>> {
        self.run_layers(probe, input, targets).map(|(e, _)| e)
    }

    /// Already post-processed and at the input's resolution.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(None, false)
    }
}
