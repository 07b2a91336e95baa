//! Score-CAM.

use burn::config::Config;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::{Filter, normalize};
use crate::methods::weighted_sum;
use crate::probe::Probe;
use crate::resize::{resize, resize_align_corners};
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
/// [`ScoreCam::pytorch_grad_cam`] computes pytorch-grad-cam's `ScoreCAM`
/// instead: `U_k[b]` = `A[b, k]` resized with aligned corners, then
/// `M_k = (U_k − min) / (max − min + 1e-8)` over the input's positions;
/// `w[b, n] = softmax_k(s_k[b, n])`; `maps[b, n] = Σ_k w_k · A[b, k]`, at the
/// tap's resolution.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///   (pytorch-grad-cam's variant: the tap's)
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
    /// pytorch-grad-cam's variant (see above) instead of keras-explainable's.
    #[config(default = false)]
    pub pytorch_grad_cam: bool,
}

impl ScoreCam {
    /// pytorch-grad-cam's `ScoreCAM` (its `batch_size` defaults to 16 there).
    pub fn pytorch_grad_cam() -> Self {
        Self::new().with_pytorch_grad_cam(true)
    }
}

/// What Score-CAM measures before weighting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MaskedScores<const D: usize> {
    /// The scores of the input, `[B, N]`.
    pub scores: Tensor<2>,
    /// The units explained, `[B, N]`.
    pub indices: Tensor<2, Int>,
    /// `s_k`: the scores of the input masked by each channel's mask, `[B, N, K]`.
    pub masked: Tensor<3>,
    /// The activation at the tap, `[B, K, ...spatial_tap]`.
    pub activation: Tensor<D>,
    /// The masks, `[B, K, ...spatial]`.
    pub masks: Tensor<D>,
}

/// pytorch-grad-cam's Score-CAM masks: each channel resized to `size` with
/// aligned corners, then `(u − min) / (max − min + 1e-8)`.
pub fn pytorch_grad_cam_masks<const D: usize>(
    activation: Tensor<D>,
    size: &[usize],
) -> crate::Result<Tensor<D>> {
    let upsampled = resize_align_corners(activation, size)?;
    let dims = upsampled.dims();
    let flat = flatten_spatial(upsampled);
    let min = flat.clone().min_dim(2);
    let range = flat.clone().max_dim(2) - min.clone();
    Ok(unflatten_spatial(
        (flat - min) / range.add_scalar(1e-8),
        &dims[2..],
    ))
}

/// Score-CAM masks: each channel of `[B, K, ...spatial_tap]` min-max
/// normalised, then resized to `size`: `[B, K, ...size]`.
pub fn score_cam_masks<const D: usize>(
    activation: Tensor<D>,
    size: &[usize],
) -> crate::Result<Tensor<D>> {
    resize(normalize(activation), size)
}

impl ScoreCam {
    /// The scores of the input masked by each channel's mask.
    ///
    /// # Errors
    /// As [`explain`](Explainer::explain).
    pub fn masked_scores<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<MaskedScores<D>> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        probe.require_tap("Score-CAM")?;
        let (output, activation) = probe.activations(input.clone())?;
        let input = input.detach().without_autodiff();
        let resolved = targets.resolve(&output)?;
        let device = activation.device();
        let dims = input.dims();
        let (batch, n) = (resolved.batch, resolved.units);
        let channels = activation.dims()[1];
        let masks = if self.pytorch_grad_cam {
            pytorch_grad_cam_masks(activation.clone(), &dims[2..])?
        } else {
            score_cam_masks(activation.clone(), &dims[2..])?
        }; // [B, K, ...spatial]
        let flat_masks = flatten_spatial(masks.clone()); // [B, K, P]
        let pixels = flat_masks.dims()[2];
        let mask_rows = flat_masks.reshape([batch * channels, 1, pixels]);
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
        let masked = Tensor::cat(scores, 0)
            .reshape([batch, channels, n])
            .swap_dims(1, 2);
        Ok(MaskedScores {
            scores: resolved.sample_scores(&output)?,
            indices: resolved.tensor(&device),
            masked,
            activation,
            masks,
        })
    }
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for ScoreCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        Ok(self.weigh(self.masked_scores(probe, input, targets)?))
    }

    /// Positive-normalised, already at the input's resolution
    /// (pytorch-grad-cam's variant: resized from the tap's).
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(Some(Filter::PositiveNormalize), self.pytorch_grad_cam)
    }
}

impl ScoreCam {
    /// The maps from the masked scores: what [`explain`](Explainer::explain)
    /// returns after [`masked_scores`](Self::masked_scores).
    pub fn weigh<const D: usize>(&self, m: MaskedScores<D>) -> Explanation<D> {
        let maps = if self.pytorch_grad_cam {
            weighted_sum(m.activation, softmax(m.masked, 2))
        } else {
            let dims = m.masks.dims();
            unflatten_spatial(m.masked.matmul(flatten_spatial(m.masks)), &dims[2..])
        };
        Explanation {
            scores: m.scores,
            indices: m.indices,
            maps,
        }
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
