//! The one call shape every method shares.

use burn::prelude::*;

use crate::error::Result;
use crate::explainable::Explainable;
use crate::filters::Filter;
use crate::probe::Probe;
use crate::targets::Targets;

/// Maps with the scores they explain.
///
/// For `B` samples and `N` units per sample: `scores` is `[B, N]`,
/// `indices` `[B, N]` (the units explained, which is how top-k targets are
/// reported), and `maps` `[B, N, ...spatial]`, one map per unit, at the
/// method's own resolution (the tap's for CAMs, the input's for the others)
/// until the [`Pipeline`](crate::Pipeline) driver resizes them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Explanation<const D: usize> {
    /// The selected raw model outputs, `[B, N]`.
    pub scores: Tensor<2>,
    /// The unit each map explains, `[B, N]`.
    pub indices: Tensor<2, Int>,
    /// One map per sample and unit, `[B, N, ...spatial]`.
    pub maps: Tensor<D>,
}

impl<const D: usize> Explanation<D> {
    /// An explanation from its parts (for explainers written outside the crate).
    pub fn new(scores: Tensor<2>, indices: Tensor<2, Int>, maps: Tensor<D>) -> Self {
        Self {
            scores,
            indices,
            maps,
        }
    }
}

/// How the [`Pipeline`](crate::Pipeline) driver post-processes a method's maps
/// unless told otherwise (the keras-explainable shortcut defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Postprocessing {
    /// The filter applied to the raw maps.
    pub filter: Option<Filter>,
    /// Whether the filtered maps are resized to the input size.
    pub resize: bool,
    /// A filter applied after resizing (pytorch-grad-cam normalises again).
    pub after_resize: Option<Filter>,
}

impl Postprocessing {
    /// `filter`, then resizing to the input when `resize`.
    pub fn new(filter: Option<Filter>, resize: bool) -> Self {
        Self {
            filter,
            resize,
            after_resize: None,
        }
    }

    /// Adds a filter applied after resizing.
    pub fn then(mut self, after_resize: Option<Filter>) -> Self {
        self.after_resize = after_resize;
        self
    }
}

/// An explanation method: CAM, Grad-CAM, saliency, ... or a combinator
/// wrapping one.
///
/// Every method is called the same way: a [`Probe`] around the model, an
/// input `[B, C, ...spatial]` and the [`Targets`] to explain. Methods return
/// raw maps (no ReLU, no normalisation); the [`Pipeline`](crate::Pipeline)
/// driver post-processes them.
pub trait Explainer<M: Explainable<D>, const D: usize> {
    /// Explains `targets` of `input` on the probed model.
    ///
    /// # Errors
    /// Bad input or targets, a tap the model does not reach, or what the
    /// method itself needs and does not find (see each method).
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Explanation<D>>;

    /// The post-processing the driver applies by default.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(Some(Filter::PositiveNormalize), true)
    }
}

impl<E: Explainer<M, D> + ?Sized, M: Explainable<D>, const D: usize> Explainer<M, D> for &E {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Explanation<D>> {
        (**self).explain(probe, input, targets)
    }

    fn postprocessing(&self) -> Postprocessing {
        (**self).postprocessing()
    }
}

impl<E: Explainer<M, D> + ?Sized, M: Explainable<D>, const D: usize> Explainer<M, D> for Box<E> {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Explanation<D>> {
        (**self).explain(probe, input, targets)
    }

    fn postprocessing(&self) -> Postprocessing {
        (**self).postprocessing()
    }
}
