//! Test-time augmentation around any explainer.

use burn::prelude::*;

use crate::combinators::Mean;
use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::probe::Probe;
use crate::resize::resize;
use crate::targets::Targets;
use crate::tensor_ops::check_not_empty;

/// Test-time augmentation: the mean of an explainer's scores and maps over
/// the input, its rescaled copies and (optionally) their mirror images.
///
/// Passes: the input, then each scale `s` (every spatial axis resized to
/// `⌊s · size⌋`, half-pixel linear interpolation), each also flipped along
/// the last spatial axis when `flip` is set. Each map is un-flipped, then
/// resized back to the input size; the mean divides by the number of passes
/// run, `(scales + 1) · (1 + flip)` (keras-explainable divides by
/// `scales · (1 + flip)`, a bug). Every pass explains the units the first
/// (plain) pass explained. Segmentation targets follow the output's
/// pixels: each pass flips their masks and resizes them (linearly) with the
/// input, so the output must have the input's spatial axes.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///
/// # Cost
/// `(scales + 1) · (1 + flip)` calls of the inner explainer, on inputs of
/// the scaled sizes.
///
/// # Errors
/// A non-positive or non-finite scale, a scale whose image would have 0
/// positions along an axis, and every error of the inner explainer (naming
/// the pass).
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, GradCam, Probe, Targets, Tta, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = Tta::new(GradCam::new()).with_scales(vec![0.5, 2.0]).explain(&probe, x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct Tta<E> {
    /// The wrapped explainer.
    pub inner: E,
    /// Scales besides the original (default `[0.5, 1.5, 2.0]`).
    pub scales: Vec<f64>,
    /// Whether every pass also runs mirrored along the last spatial axis (default true).
    pub flip: bool,
}

impl<E> Tta<E> {
    /// keras-explainable's defaults: scales 0.5, 1.5, 2 and horizontal flips.
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            scales: vec![0.5, 1.5, 2.0],
            flip: true,
        }
    }

    /// Scales besides the original.
    pub fn with_scales(mut self, scales: Vec<f64>) -> Self {
        self.scales = scales;
        self
    }

    /// Whether passes also run mirrored.
    pub fn with_flip(mut self, flip: bool) -> Self {
        self.flip = flip;
        self
    }

    /// The scaled spatial size, as keras-explainable computes it
    /// (`int32(float32(scale) · size)`).
    fn scaled(scale: f64, spatial: &[usize]) -> crate::Result<Vec<usize>> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::config(
                "tta scale",
                format!("{scale} is not a positive number"),
            ));
        }
        let size: Vec<usize> = spatial
            .iter()
            .map(|&d| ((scale as f32) * d as f32) as usize)
            .collect();
        if size.contains(&0) {
            return Err(Error::config(
                "tta scale",
                format!("scale {scale} turns spatial size {spatial:?} into {size:?}"),
            ));
        }
        Ok(size)
    }
}

impl<E: Explainer<M, D>, M: Explainable<D>, const D: usize> Explainer<M, D> for Tta<E> {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let dims = input.dims();
        check_not_empty("input", &dims)?;
        targets.validate(dims[0])?;
        let spatial = dims[2..].to_vec();
        let sizes = self
            .scales
            .iter()
            .map(|&s| Self::scaled(s, &spatial))
            .collect::<crate::Result<Vec<_>>>()?;
        let flips: &[bool] = if self.flip { &[false, true] } else { &[false] };
        // (scale and its size, flipped), in keras-explainable's order.
        let scaled = std::iter::once(None).chain(self.scales.iter().zip(&sizes).map(Some));
        let passes: Vec<_> = scaled
            .flat_map(|scale| flips.iter().map(move |&f| (scale, f)))
            .collect();
        let axis = D - 1;
        let mut mean = Mean::new();
        let mut first: Option<(Tensor<2, Int>, Targets)> = None;
        for (scale, flip) in passes {
            let name = match scale {
                Some((s, _)) => format!("tta scale {s}{}", if flip { ", flipped" } else { "" }),
                None => format!("tta original{}", if flip { ", flipped" } else { "" }),
            };
            let wrap = |e: Error| Error::Pass {
                pass: name.clone(),
                source: Box::new(e),
            };
            let mut x = input.clone();
            if flip {
                x = x.flip([axis]);
            }
            if let Some((_, size)) = scale {
                x = resize(x, size).map_err(wrap)?;
            }
            // Segmentation masks follow the output's pixels.
            let pass_targets = first
                .as_ref()
                .map_or(targets, |(_, t)| t)
                .map_masks::<D>(|mut m| {
                    if flip {
                        m = m.flip([axis]);
                    }
                    match scale {
                        Some((_, size)) => resize(m, size),
                        None => Ok(m),
                    }
                })
                .map_err(wrap)?;
            let e = self.inner.explain(probe, x, &pass_targets).map_err(wrap)?;
            let mut maps = e.maps;
            if flip {
                maps = maps.flip([axis]);
            }
            let maps = resize(maps, &spatial).map_err(wrap)?;
            if first.is_none() {
                let fixed = targets.fixed(&e.indices)?;
                first = Some((e.indices, fixed));
            }
            mean.add(e.scores, maps, 1);
        }
        let (indices, _) = first.expect("the original pass ran");
        Ok(mean.finish(indices))
    }

    /// The inner explainer's filter; maps are already at the input size.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing {
            resize: false,
            ..self.inner.postprocessing()
        }
    }
}
