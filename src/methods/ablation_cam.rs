//! Ablation-CAM.

use burn::config::Config;
use burn::prelude::*;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::weighted_maps;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{check_finite, repeat_each};

/// Ablation-CAM: each channel of the tap weighted by how much the score
/// drops when that channel is set to zero. No gradients.
///
/// Desai & Ramaswamy, *Ablation-CAM: Visual Explanation for Deep
/// Convolutional Network via Gradient-free Localization*, WACV 2020.
///
/// With `s[b, n]` the score and `s_k[b, n]` the score with channel `k` of
/// the tap's activation replaced by `value` (default 0):
/// `w[b, n, k] = (s − s_k) / s` and `maps[b, n] = Σ_k w[b, n, k] · A[b, k]`,
/// raw (pytorch-grad-cam's `AblationCAM`). The division by the score makes
/// the weights change sign with it and grow without bound as it nears 0.
///
/// pytorch-grad-cam writes 0 when the activation's minimum is 0 (a tap
/// after a ReLU, the usual case) and otherwise a value it lowers by 1e7
/// for every ablated row; here the value is `value` for every row.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// One forward pass, then `B · K` ablated copies of the activation (K
/// channels at the tap) in chunks of up to `batch_size` copies of one
/// sample. At a cut ([`Explainable::is_cut`]) only the layers after the tap
/// run on the copies, the layers before it on the chunk's one sample (where
/// pytorch-grad-cam reruns the whole model per copy); elsewhere the whole
/// model runs per copy, the skip connections carrying the sample's own
/// values.
///
/// # Errors
/// No tap selected, `batch_size == 0`, a non-finite `value`, a target score
/// of exactly 0 (the weights are undefined), and the input and target
/// errors of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{AblationCam, Explainer, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = AblationCam::new().explain(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct AblationCam {
    /// Ablated copies per forward pass (pytorch-grad-cam's `batch_size`,
    /// whose default is 32).
    #[config(default = 32)]
    pub batch_size: usize,
    /// The value an ablated channel takes.
    #[config(default = 0.0)]
    pub value: f64,
    /// Project `w ⊙ A` on its first principal component instead of summing
    /// over channels (pytorch-grad-cam's `eigen_smooth`).
    #[config(default = false)]
    pub eigen_smooth: bool,
}

/// Ablation-CAM weights `(s − s_k) / s` from the scores `[B, N]` and the
/// ablated scores `[B, N, K]`.
#[must_use]
pub fn ablation_cam_weights(scores: Tensor<2>, ablated: Tensor<3>) -> Tensor<3> {
    let s = scores.unsqueeze_dim::<3>(2);
    (s.clone() - ablated) / s
}

/// What Ablation-CAM measures before weighting: the scores, the ablated
/// scores and the activation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Ablations<const D: usize> {
    /// The scores `s`, `[B, N]`.
    pub scores: Tensor<2>,
    /// The units explained, `[B, N]`.
    pub indices: Tensor<2, Int>,
    /// `s_k`: the scores with channel `k` ablated, `[B, N, K]`.
    pub ablated: Tensor<3>,
    /// The activation at the tap, `[B, K, ...spatial_tap]`.
    pub activation: Tensor<D>,
}

impl AblationCam {
    /// The scores with each channel of the tap ablated in turn.
    ///
    /// # Errors
    /// As [`explain`](Explainer::explain), but for the zero score.
    pub fn ablations<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Ablations<D>> {
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if !self.value.is_finite() {
            return Err(Error::config("value", "must be finite"));
        }
        let tap = probe.require_tap("Ablation-CAM")?;
        let cut = probe.model().is_cut(tap);
        let (output, activation) = probe.activations(input.clone())?;
        let input = input.detach().without_autodiff();
        let resolved = targets.resolve(&output)?;
        let device = activation.device();
        let caller = input.dims();
        let dims = activation.dims();
        let (batch, channels, n) = (resolved.batch, dims[1], resolved.units);
        let mut mask_shape = [1; D];
        let mut ablated = Vec::new();
        // Chunks never span two samples: at a cut the layers before the tap
        // run on the chunk's one sample (its row stands for every copy);
        // elsewhere on one input row per copy.
        for b in 0..batch {
            let sample = input.clone().narrow(0, b, 1);
            let one = activation.clone().narrow(0, b, 1);
            for start in (0..channels).step_by(self.batch_size) {
                let len = self.batch_size.min(channels - start);
                // Copy i keeps every channel but `start + i`.
                let keep: Vec<f32> = (start..start + len)
                    .flat_map(|c| (0..channels).map(move |k| f32::from(u8::from(k != c))))
                    .collect();
                mask_shape[0] = len;
                mask_shape[1] = channels;
                let keep: Tensor<D> =
                    Tensor::<2>::from_data(TensorData::new(keep, [len, channels]), &device)
                        .reshape(mask_shape);
                let mut replaced = repeat_each(one.clone(), len) * keep.clone();
                if self.value != 0.0 {
                    replaced = replaced + keep.neg().add_scalar(1.0).mul_scalar(self.value);
                }
                let x = if cut {
                    sample.clone()
                } else {
                    repeat_each(sample.clone(), len)
                };
                let out = probe.forward_replaced_unchecked(x, replaced, &caller)?;
                ablated.push(resolved.scores_all(&out, &vec![b; len])?); // [len, N]
            }
        }
        // [B·K, N] → [B, N, K]
        let ablated = Tensor::cat(ablated, 0)
            .reshape([batch, channels, n])
            .swap_dims(1, 2);
        Ok(Ablations {
            scores: resolved.sample_scores(&output)?,
            indices: resolved.tensor(&device),
            ablated,
            activation,
        })
    }
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for AblationCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let a = self.ablations(probe, input, targets)?;
        let weights = ablation_cam_weights(a.scores.clone(), a.ablated);
        check_finite(
            "Ablation-CAM weights (a target score is exactly 0)",
            &weights,
        )?;
        Ok(Explanation {
            maps: weighted_maps(a.activation, weights, self.eigen_smooth)?,
            scores: a.scores,
            indices: a.indices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_relative_drops() {
        let device = Device::flex();
        let s = Tensor::<2>::from_floats([[2.0, -4.0]], &device);
        let sk = Tensor::<3>::from_floats([[[1.0, 2.0], [-2.0, -4.0]]], &device);
        // (2 − 1)/2, (2 − 2)/2; (−4 + 2)/−4, (−4 + 4)/−4.
        let expected = Tensor::<3>::from_floats([[[0.5, 0.0], [0.5, 0.0]]], &device);
        ablation_cam_weights(s, sk)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
