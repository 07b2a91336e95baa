//! The `explain` driver: batching, post-processing and resizing.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::probe::{Explainable, Probe};
use crate::resize::{Resize, resize};
use crate::targets::Targets;
use crate::tensor_ops::check_not_empty;

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
/// use burn_explainable::{Explain, GradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([3, 3, 8, 8], &device);
/// let e = Explain::new(GradCam::new())
///     .with_batch_size(2)
///     .run(&probe, x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [3, 1, 8, 8]);
/// let max = e.maps.max().into_scalar::<f32>();
/// assert!(max <= 1.0);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Explain<E> {
    explainer: E,
    batch_size: usize,
    filter: Option<Option<Filter>>,
    resize: Option<Resize>,
}

impl<E> Explain<E> {
    /// The driver around `explainer`, with batches of 32 and the method's
    /// default post-processing.
    pub fn new(explainer: E) -> Self {
        Self {
            explainer,
            batch_size: 32,
            filter: None,
            resize: None,
        }
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
        check_not_empty("input", &dims)?;
        let batch = dims[0];
        targets.validate(batch)?;
        let defaults = self.explainer.postprocessing();
        let filter = self.filter.unwrap_or(defaults.filter);
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
                .explain(probe, chunk, &targets.rows(start, len))?;
            let mut m = e.maps;
            if let Some(f) = filter {
                m = f.apply(m);
            }
            if let Some(size) = &size {
                m = resize(m, size)?;
            }
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

impl<E: Explainer<M, D>, M: Explainable<D>, const D: usize> Explainer<M, D> for Explain<E> {
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
        Postprocessing {
            filter: None,
            resize: false,
        }
    }
}
