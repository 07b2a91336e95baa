//! Explanation quality: how much a map says about the model.
//!
//! A heatmap that looks right is not evidence. These metrics perturb the
//! input where a map points and measure the model's score, or compare the
//! map with where the object is:
//!
//! | metric | question | peer convention |
//! | --- | --- | --- |
//! | [`CausalFidelity::deletion`] / [`insertion`](CausalFidelity::insertion) | does removing (adding) the most relevant pixels first make the score fall (rise) fast? | Xplique's `Deletion` / `Insertion` |
//! | [`Road`] | the same with pixels imputed from their neighbours, so the removal itself leaks no shape | pytorch-grad-cam's `ROADMostRelevantFirst` / `LeastRelevantFirst` / `Combined` |
//! | [`CamMultImage`] | does the image multiplied by the map keep the score? | pytorch-grad-cam's confidence change, drop and increase; TorchCAM's Average Drop and Increase in Confidence |
//! | [`PointingGame`] | does the map's maximum (its energy) fall on the object? | TorchRay's pointing game; Score-CAM's energy-based pointing game |
//! | [`ModelRandomization`] | do the maps change when the model's layers are re-initialised, one after the other from the top? (they should) | Adebayo et al.'s cascading randomisation, rank correlation and SSIM |
//!
//! Every model-based metric has the call shape of the methods,
//! `metric.evaluate(&probe, input, &targets, &maps)`: the maps
//! `[B, N, ...spatial]` are those an explainer returned for the same input
//! and targets (one per sample and unit, at the input's resolution), and the
//! targets give the score the metric watches — a logit, or a probability
//! with [`Targets::softmax`]. Top-k targets are fixed on the unperturbed
//! input. Perturbed copies are scored in passes of at most `rows_per_pass`
//! rows, so the results do not depend on how they are chunked.

mod causal;
mod confidence;
mod pointing;
mod randomization;
mod road;

pub use causal::{Causal, CausalFidelity, Curves, causal_counts, causal_order};
pub use confidence::{CamMultImage, ConfidenceChange};
pub use pointing::{Pointing, PointingGame, box_masks};
pub use randomization::{ModelRandomization, Randomization};
pub use road::{Road, RoadOrder, RoadScores, linear_impute, percentile_threshold, road_keep};

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::Explainable;
use crate::probe::Probe;
use crate::targets::{Resolved, Targets};
use crate::tensor_ops::{check_finite, shape_with};

/// Rows per forward pass when a metric is not told otherwise.
pub const ROWS_PER_PASS: usize = 32;

/// The unperturbed pass every model-based metric starts from.
pub(crate) struct Clean<const D: usize> {
    /// The checked input, off any autodiff graph.
    pub input: Tensor<D>,
    /// The targets resolved on the input's output (top-k fixed).
    pub resolved: Resolved,
    /// The scores on the input `[B, N]`.
    pub scores: Tensor<2>,
}

impl<const D: usize> Clean<D> {
    /// Checks the input and the maps (`[B, N, ...spatial]`, finite) and
    /// scores the input.
    pub(crate) fn new<M: Explainable<D>>(
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
        maps: &Tensor<D>,
    ) -> Result<Self> {
        let input = probe.prepare(input)?;
        let dims = input.dims();
        let output = probe.forward_unchecked(input.clone(), &dims)?;
        let resolved = targets.resolve(&output)?;
        let scores = resolved.sample_scores(&output)?;
        let mut expected = dims.to_vec();
        expected[1] = resolved.units;
        if maps.dims().to_vec() != expected {
            return Err(Error::Shape {
                what: "maps [B, N, ...spatial] (the input's batch and spatial shape, one per target unit)",
                expected,
                actual: maps.dims().to_vec(),
            });
        }
        check_finite("maps", maps)?;
        Ok(Self {
            input,
            resolved,
            scores,
        })
    }

    /// The scores of perturbed copies: row `r` is a copy of sample
    /// `pairs[r].0`, scored for unit column `pairs[r].1`; `make(start, len)`
    /// builds rows `start..start + len` with the spatial axes flattened,
    /// `[len, C, P]`. Passes of at most `per_pass` rows.
    pub(crate) fn perturbed_scores<M: Explainable<D>>(
        &self,
        probe: &Probe<M, D>,
        pairs: &[(usize, usize)],
        per_pass: usize,
        mut make: impl FnMut(usize, usize) -> Result<Tensor<3>>,
    ) -> Result<Vec<f32>> {
        let dims = self.input.dims();
        let mut scores = Vec::with_capacity(pairs.len());
        for start in (0..pairs.len()).step_by(per_pass.max(1)) {
            let len = per_pass.min(pairs.len() - start);
            let rows = make(start, len)?.reshape(shape_with::<D>(len, dims[1], &dims[2..]));
            let output = probe.forward_unchecked(rows, &dims)?;
            let (samples, columns): (Vec<usize>, Vec<usize>) =
                pairs[start..start + len].iter().copied().unzip();
            let s = self.resolved.scores_at(&output, &samples, &columns)?;
            scores.extend(crate::tensor_ops::read_f32(s)?);
        }
        Ok(scores)
    }
}

/// The rows-per-pass setting, checked.
pub(crate) fn rows_per_pass(setting: Option<usize>) -> Result<usize> {
    match setting {
        Some(0) => Err(Error::config("rows_per_pass", "must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(ROWS_PER_PASS),
    }
}

/// Rows `index` of `t` (`[R, ...]` → `[index.len(), ...]`).
pub(crate) fn gather_rows<const D: usize>(t: &Tensor<D>, index: &[usize]) -> Tensor<D> {
    let device = t.device();
    let index: Vec<i64> = index.iter().map(|&i| i as i64).collect();
    let len = index.len();
    t.clone().select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(index, [len]), &device),
    )
}
