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
use crate::tensor_ops::{flatten_spatial, read_f32, unflatten_spatial};

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
/// [`ScoreCam::faster`] (Faster-Score-CAM, tf-keras-vis's `max_N`) keeps
/// only the channels of largest variance over the tap's positions, per
/// sample, and sums (or softmaxes) over those: an approximation, for a
/// fraction of the masked passes.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///   (pytorch-grad-cam's variant: the tap's)
///
/// # Cost
/// One forward pass of the batch, then one masked forward pass per live
/// channel and sample (`B·K` at most, `K` channels at the tap) in batches of
/// `batch_size`, all without autodiff, whatever `N`. A channel whose mask is
/// zero everywhere (constant at the tap, as a channel dead after a ReLU is)
/// masks the input to zero whatever the sample: one forward pass of a zero
/// input scores all of them, exactly as their own passes would. The result
/// does not depend on `batch_size`.
///
/// # Errors
/// No tap selected, `batch_size == 0`, `top_channels` 0 or more than the
/// tap's channels, and the input and target errors of every method.
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
    /// Faster-Score-CAM: only the channels with the largest variance over
    /// the tap's positions, this many per sample (`None`: every channel).
    /// An approximation: the other channels' terms are dropped from the sum
    /// (and from pytorch-grad-cam's softmax).
    pub top_channels: Option<usize>,
}

impl ScoreCam {
    /// pytorch-grad-cam's `ScoreCAM` (its `batch_size` defaults to 16 there).
    pub fn pytorch_grad_cam() -> Self {
        Self::new().with_pytorch_grad_cam(true)
    }

    /// Faster-Score-CAM (tf-keras-vis's `max_N`): Score-CAM over the
    /// `top_channels` channels of largest activation variance per sample,
    /// `top_channels` masked passes per sample instead of `K`. An
    /// approximation of [`ScoreCam::new`]; every channel (`top_channels =
    /// K`) gives Score-CAM exactly. With a quarter of the channels, the
    /// post-processed `[0, 1]` maps of pytorch-grad-cam's variant on a
    /// torchvision ResNet-18 differ from the full ones by up to 0.2 (the
    /// crate's tests measure it).
    pub fn faster(top_channels: usize) -> Self {
        Self::new().with_top_channels(Some(top_channels))
    }
}

/// The `top` channels of `activation` `[B, K, ...spatial]` with the largest
/// variance over the positions, per sample, in decreasing variance (ties:
/// the lower channel first): `[B, top]`.
///
/// # Errors
/// [`Error::Data`] if the variances cannot be read back.
pub fn top_variance_channels<const D: usize>(
    activation: Tensor<D>,
    top: usize,
) -> crate::Result<Tensor<2, Int>> {
    let device = activation.device();
    let flat = flatten_spatial(activation); // [B, K, Q]
    let [batch, channels, _] = flat.dims();
    let centred = flat.clone() - flat.mean_dim(2);
    let variance = read_f32(centred.powi_scalar(2).mean_dim(2))?;
    let top = top.min(channels);
    let mut order = Vec::with_capacity(batch * top);
    for row in variance.chunks(channels) {
        let mut ks: Vec<usize> = (0..channels).collect();
        // Stable: equal variances keep the lower channel first.
        ks.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        order.extend(ks[..top].iter().map(|&k| k as i64));
    }
    Ok(Tensor::from_data(
        TensorData::new(order, [batch, top]),
        &device,
    ))
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
    /// The channels scored, `[B, K]`, with
    /// [`top_channels`](ScoreCam::top_channels) (`masked`, `activation` and
    /// `masks` then hold those channels only, in this order); `None`: every
    /// channel, in order.
    pub channels: Option<Tensor<2, Int>>,
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
        let (activation, selected) = match self.top_channels {
            None => (activation, None),
            Some(top) => {
                let all = activation.dims()[1];
                if top == 0 || top > all {
                    return Err(Error::config(
                        "top_channels",
                        format!("{top} is not between 1 and the tap's {all} channels"),
                    ));
                }
                let order = top_variance_channels(activation.clone(), top)?;
                let tap_dims = activation.dims();
                let flat = flatten_spatial(activation); // [B, K, Q]
                let positions = flat.dims()[2];
                let index = order
                    .clone()
                    .reshape([batch, top, 1])
                    .repeat_dim(2, positions);
                let kept = unflatten_spatial(flat.gather(1, index), &tap_dims[2..]);
                (kept, Some(order))
            }
        };
        let channels = activation.dims()[1];
        let masks = if self.pytorch_grad_cam {
            pytorch_grad_cam_masks(activation.clone(), &dims[2..])?
        } else {
            score_cam_masks(activation.clone(), &dims[2..])?
        }; // [B, K, ...spatial]
        let flat_masks = flatten_spatial(masks.clone()); // [B, K, P]
        let pixels = flat_masks.dims()[2];
        let pairs = batch * channels;
        let mask_rows = flat_masks.reshape([pairs, 1, pixels]);
        let inputs = input.reshape([batch, 1, dims[1], pixels]);
        // A mask that is zero everywhere (a channel constant at the tap:
        // dead after a ReLU) gives the model the same all-zero input for
        // every such channel and every sample: one forward pass scores them.
        let peaks = read_f32(mask_rows.clone().max_dim(2).reshape([pairs]))?;
        let (live, dead): (Vec<usize>, Vec<usize>) = (0..pairs).partition(|&p| peaks[p] != 0.0);
        let int1 = |values: Vec<i64>| {
            let len = values.len();
            Tensor::<1, Int>::from_data(TensorData::new(values, [len]), &device)
        };
        let mut scores = Vec::new();
        for chunk in live.chunks(self.batch_size) {
            let len = chunk.len();
            let rows: Vec<usize> = chunk.iter().map(|&p| p / channels).collect();
            let x = inputs
                .clone()
                .select(0, int1(rows.iter().map(|&b| b as i64).collect()))
                .reshape([len, dims[1], pixels]);
            let pair_masks = mask_rows
                .clone()
                .select(0, int1(chunk.iter().map(|&p| p as i64).collect()));
            let masked: Tensor<D> = unflatten_spatial(x * pair_masks, &dims[2..]);
            let out = probe.forward_unchecked(masked, &dims)?;
            scores.push(resolved.scores_all(&out, &rows)?); // [len, N]
        }
        // Row of each pair in the concatenated scores: its live row, or the
        // zero input's row scored for its sample.
        let mut order = vec![0i64; pairs];
        for (row, &p) in live.iter().enumerate() {
            order[p] = row as i64;
        }
        if !dead.is_empty() {
            let mut zero_dims = dims;
            zero_dims[0] = 1;
            let out = probe.forward_unchecked(Tensor::zeros(zero_dims, &device), &dims)?;
            let mut row_of_sample = vec![None; batch];
            let mut next_row = live.len();
            for &p in &dead {
                let b = p / channels;
                if row_of_sample[b].is_none() {
                    scores.push(resolved.scores_all(&out, &[b])?); // [1, N]
                    row_of_sample[b] = Some(next_row as i64);
                    next_row += 1;
                }
                order[p] = row_of_sample[b].unwrap_or_default();
            }
        }
        // [B·K, N] → [B, N, K]
        let masked = Tensor::cat(scores, 0)
            .select(0, int1(order))
            .reshape([batch, channels, n])
            .swap_dims(1, 2);
        Ok(MaskedScores {
            scores: resolved.sample_scores(&output)?,
            indices: resolved.tensor(&device),
            masked,
            activation,
            masks,
            channels: selected,
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

    #[test]
    fn every_channel_by_variance_is_score_cam() {
        let device = Device::flex();
        let model = crate::testing::TinyNet::new(&device);
        let probe = Probe::new(&model).at(crate::testing::TinyNet::FEATURES);
        let x = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &device);
        let targets = Targets::indices([[0, 2], [1, 0]]);
        let channels = probe.activations(x.clone()).unwrap().1.dims()[1];
        for (full, faster) in [
            (ScoreCam::new(), ScoreCam::faster(channels)),
            (
                ScoreCam::pytorch_grad_cam(),
                ScoreCam::pytorch_grad_cam().with_top_channels(Some(channels)),
            ),
        ] {
            let a = full.explain(&probe, x.clone(), &targets).unwrap().maps;
            let b = faster.explain(&probe, x.clone(), &targets).unwrap().maps;
            a.into_data()
                .assert_approx_eq::<f32>(&b.into_data(), Default::default());
        }
        for top in [0, channels + 1] {
            let e = ScoreCam::faster(top).explain(&probe, x.clone(), &targets);
            assert!(
                matches!(
                    e,
                    Err(Error::InvalidConfig {
                        name: "top_channels",
                        ..
                    })
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn top_variance_channels_keep_the_lower_channel_on_ties() {
        let device = Device::flex();
        // Variances per channel: 0, 1, 0, 4 (sample 0); 1, 1, 0, 0 (sample 1).
        let a = Tensor::<3>::from_floats(
            [
                [[5.0, 5.0], [0.0, 2.0], [1.0, 1.0], [0.0, 4.0]],
                [[1.0, 3.0], [2.0, 0.0], [0.0, 0.0], [7.0, 7.0]],
            ],
            &device,
        );
        let top = top_variance_channels(a, 3).unwrap();
        top.into_data()
            .assert_eq(&TensorData::from([[3i64, 1, 0], [0, 1, 2]]), false);
    }
}
