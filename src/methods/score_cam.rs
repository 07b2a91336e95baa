//! Score-CAM.

use burn::config::Config;
use burn::prelude::*;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::{Filter, normalize};
use crate::probe::Probe;
use crate::resize::resize;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, unflatten_spatial};

/// Score-CAM: every channel of the activation, normalised and upsampled, masks
/// the input; the masked input's score weights the mask.
///
/// Wang et al., *Score-CAM: Score-Weighted Visual Explanations for
/// Convolutional Neural Networks*, CVPR Workshops 2020 (as keras-explainable
/// computes it).
///
/// `M_k[b] = resize(normalize(A[b, k]))` to the input size (min-max over the
/// tap's positions, then half-pixel bilinear); `s_k[b, n]` is the raw score
/// of unit `idx[b, n]` for the input `x[b] ⊙ M_k[b]` (broadcast over
/// channels); `maps[b, n] = Σ_k s_k[b, n] · M_k[b]`. Raw scores, no baseline,
/// no softmax, a sum (keras-explainable's choices). A constant channel has
/// a zero mask and contributes nothing.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///
/// # Cost
/// One forward pass of the batch, then `B·K` masked forward passes (`K`
/// channels at the tap) in batches of `batch_size`, all without autodiff,
/// whatever `N`. The result does not depend on `batch_size`.
///
/// # Errors
/// No tap selected, `batch_size == 0`, and the input and target errors of
/// every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, Probe, ScoreCam, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = ScoreCam::new().with_batch_size(4).explain(&probe, x, &Targets::indices([[2]]))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct ScoreCam {
    /// Masked inputs per forward pass (across channels and samples).
    #[config(default = 32)]
    pub batch_size: usize,
}

/// Score-CAM masks: each channel of `[B, K, ...spatial_tap]` min-max
/// normalised, then resized to `size`: `[B, K, ...size]`.
pub fn score_cam_masks<const D: usize>(
    activation: Tensor<D>,
    size: &[usize],
) -> crate::Result<Tensor<D>> {
    resize(normalize(activation), size)
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for ScoreCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        probe.require_tap("Score-CAM")?;
        let (output, activation) = probe.activations(input.clone())?;
        let resolved = targets.resolve(&output)?;
        let device = activation.device();
        let dims = input.dims();
        let (batch, n) = (resolved.batch, resolved.units);
        let channels = activation.dims()[1];
        let masks = score_cam_masks(activation, &dims[2..])?; // [B, K, ...spatial]
        let flat_masks = flatten_spatial(masks.clone()); // [B, K, P]
        let pixels = flat_masks.dims()[2];
        let mask_rows = flat_masks.clone().reshape([batch * channels, 1, pixels]);
        let inputs = input.reshape([batch, 1, dims[1], pixels]);
        let pairs = batch * channels;
        let mut scores = Vec::new();
        for start in (0..pairs).step_by(self.batch_size) {
            let len = self.batch_size.min(pairs - start);
            let samples: Vec<i64> = (start..start + len)
                .map(|p| (p / channels) as i64)
                .collect();
            let sample_index =
                Tensor::<1, Int>::from_data(TensorData::new(samples.clone(), [len]), &device);
            let x = inputs
                .clone()
                .select(0, sample_index)
                .reshape([len, dims[1], pixels]);
            let masked = x * mask_rows.clone().narrow(0, start, len);
            let masked: Tensor<D> = unflatten_spatial(masked, &dims[2..]);
            let out = probe.forward_unchecked(masked, &dims)?;
            let rows: Vec<usize> = samples.iter().map(|&b| b as usize).collect();
            scores.push(resolved.scores_all(&out, &rows)?); // [len, N]
        }
        // [B·K, N] → [B, N, K]
        let weights = Tensor::cat(scores, 0)
            .reshape([batch, channels, n])
            .swap_dims(1, 2);
        let maps = unflatten_spatial(weights.matmul(flat_masks), &dims[2..]);
        let indices = resolved.tensor(&device);
        Ok(Explanation {
            scores: resolved.sample_scores(&output)?,
            indices,
            maps,
        })
    }

    /// Positive-normalised, already at the input's resolution.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(Some(Filter::PositiveNormalize), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_channel_gives_a_zero_mask() {
        let device = Device::flex();
        // Channel 0 varies (0 → 1 across the row), channel 1 is dead (constant 3).
        let a = Tensor::<4>::from_floats([[[[0.0, 2.0]], [[3.0, 3.0]]]], &device);
        let masks = score_cam_masks(a, &[1, 4]).unwrap();
        let expected = Tensor::<4>::from_floats(
            [[[[0.0, 0.25, 0.75, 1.0]], [[0.0, 0.0, 0.0, 0.0]]]],
            &device,
        );
        masks
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
