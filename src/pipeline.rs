//! The pipeline: batching, post-processing and resizing.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::probe::Probe;
use crate::resize::{Resize, resize};
use crate::targets::Targets;

/// Runs an explainer over a batch in chunks, then post-processes each
/// chunk's maps: filter first, then resize (keras-explainable's `explain`).
///
/// Defaults come from the method ([`Explainer::postprocessing`]): CAMs are
/// filtered with [`Filter::PositiveNormalize`] and resized to the input, as
/// keras-explainable's shortcuts do. The filter works per map, so the
/// batch size never changes the result.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Pipeline, GradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([3, 3, 8, 8], &device);
/// let e = Pipeline::new(GradCam::new())
///     .with_batch_size(2)
///     .run(&probe, x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [3, 1, 8, 8]);
/// let max = e.maps.max().into_scalar::<f32>();
/// assert!(max <= 1.0);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Pipeline<E> {
    explainer: E,
    batch_size: usize,
    filter: Option<Option<Filter>>,
    resize: Option<Resize>,
    after_resize: Option<Option<Filter>>,
}

impl<E> Pipeline<E> {
    /// The driver around `explainer`, with batches of 32 and the method's
    /// default post-processing.
    pub fn new(explainer: E) -> Self {
        Self {
            explainer,
            batch_size: 32,
            filter: None,
            resize: None,
            after_resize: None,
        }
    }

    /// The driver with pytorch-grad-cam's post-processing of one target
    /// layer: `max(·, 0)`, its normalisation `(x − min) / (1e-7 + max)`,
    /// resizing to the input, and the same normalisation again (what its
    /// `scale_cam_image` and `aggregate_multi_layers` do), so that maps
    /// equal pytorch-grad-cam's outputs. For several layers see
    /// [`Layers`](crate::combinators::Layers).
    pub fn pytorch_grad_cam(explainer: E) -> Self {
        Self::new(explainer)
            .with_filter(Some(Filter::PositiveScale))
            .with_resize(Resize::Input)
            .with_filter_after_resize(Some(Filter::Scale))
    }

    /// A filter applied after resizing (`None`: nothing).
    pub fn with_filter_after_resize(mut self, filter: Option<Filter>) -> Self {
        self.after_resize = Some(filter);
        self
    }

    /// Samples per call of the method.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The post-processing filter (`None`: raw maps).
    pub fn with_filter(mut self, filter: Option<Filter>) -> Self {
        self.filter = Some(filter);
        self
    }

    /// How maps are resized after filtering.
    pub fn with_resize(mut self, resize: Resize) -> Self {
        self.resize = Some(resize);
        self
    }

    /// The wrapped explainer.
    pub fn explainer(&self) -> &E {
        &self.explainer
    }

    /// Explains `targets` of `input`, batch by batch.
    ///
    /// # Errors
    /// A batch size of 0, a resize size of the wrong length or with a 0, and
    /// every error of the wrapped method.
    pub fn run<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Explanation<D>>
    where
        E: Explainer<M, D>,
    {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        let dims = input.dims();
        // Checked on the whole input, so that errors name the caller's shape.
        probe.check_input(&dims)?;
        let batch = dims[0];
        targets.validate(batch)?;
        let defaults = self.explainer.postprocessing();
        let filter = self.filter.unwrap_or(defaults.filter);
        let after = self.after_resize.unwrap_or(defaults.after_resize);
        let size = match self.resize.clone() {
            None if defaults.resize => Some(dims[2..].to_vec()),
            None | Some(Resize::None) => None,
            Some(Resize::Input) => Some(dims[2..].to_vec()),
            Some(Resize::To(size)) => Some(size),
        };
        let (mut scores, mut indices, mut maps) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..batch).step_by(self.batch_size) {
            let len = self.batch_size.min(batch - start);
            let chunk = input.clone().narrow(0, start, len);
            let e = self
                .explainer
                .explain(probe, chunk, &targets.rows(start, len))
                .map_err(|e| {
                    if len == batch {
                        return e;
                    }
                    Error::Pass {
                        pass: format!(
                            "samples {start}..{} of an input of shape {dims:?}",
                            start + len
                        ),
                        source: Box::new(e),
                    }
                })?;
            let m = postprocess(e.maps, filter, size.as_deref(), after)?;
            scores.push(e.scores);
            indices.push(e.indices);
            maps.push(m);
        }
        Ok(Explanation {
            scores: Tensor::cat(scores, 0),
            indices: Tensor::cat(indices, 0),
            maps: Tensor::cat(maps, 0),
        })
    }
}

/// `filter`, then resizing to `size`, then `after`: the driver's post-processing.
pub(crate) fn postprocess<const D: usize>(
    maps: Tensor<D>,
    filter: Option<Filter>,
    size: Option<&[usize]>,
    after: Option<Filter>,
) -> Result<Tensor<D>> {
    let mut m = maps;
    if let Some(f) = filter {
        m = f.apply(m);
    }
    if let Some(size) = size {
        m = resize(m, size)?;
    }
    if let Some(f) = after {
        m = f.apply(m);
    }
    Ok(m)
}

impl<E: Explainer<M, D>, M: Explainable<D>, const D: usize> Explainer<M, D> for Pipeline<E> {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Explanation<D>> {
        self.run(probe, input, targets)
    }

    /// Already post-processed: nothing more by default.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(None, false)
    }
}
