//! The explanation methods: one file each, each holding its config, its math
//! and its unit tests. The shared plumbing is the [`Probe`].

mod ablation_cam;
mod attention_rollout;
mod cam;
mod eigen_cam;
mod full_grad;
mod grad_cam;
mod grad_cam_element_wise;
mod grad_cam_plus_plus;
mod guided_backprop;
mod guided_grad_cam;
mod hires_cam;
mod input_x_gradient;
mod integrated_gradients;
mod layer_cam;
mod occlusion;
mod saliency;
mod score_cam;
mod xgrad_cam;

pub use crate::attribution::ChannelReduction;
pub use ablation_cam::{AblationCam, Ablations, ablation_cam_weights};
pub use attention_rollout::{AttentionRollout, HeadFusion, rollout_matrix};
pub use cam::{Cam, cam_weights};
pub use eigen_cam::{EigenCam, EigenGradCam, principal_projection, singular_values};
pub use full_grad::{FullGrad, full_grad_maps};
pub use grad_cam::{GradCam, grad_cam_weights};
pub use grad_cam_element_wise::GradCamElementWise;
pub use grad_cam_plus_plus::{GradCamPlusPlus, grad_cam_plus_plus_weights};
pub use guided_backprop::{Deconvolution, GuidedBackprop};
pub use guided_grad_cam::{GuidedGradCam, resize_nearest};
pub use hires_cam::HiResCam;
pub use input_x_gradient::InputXGradient;
pub use integrated_gradients::{Baseline, IntegratedGradients, Quadrature};
pub use layer_cam::LayerCam;
pub use occlusion::Occlusion;
pub use saliency::{GradientFilter, ROWS_PER_PASS, Saliency, channel_mean};
pub use score_cam::{
    MaskedScores, ScoreCam, pytorch_grad_cam_masks, score_cam_masks, top_variance_channels,
};
pub use xgrad_cam::{XGradCam, xgrad_cam_weights};

use burn::prelude::*;

use crate::explainable::Explainable;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, split_units, unflatten_spatial};

/// `maps[b, n] = Σ_k w[b, n, k] · a[b, k]`: the channel-weighted sum every
/// CAM method ends with.
///
/// # Shapes
/// - `activation`: `[B, K, ...spatial]`
/// - `weights`: `[B, N, K]`
/// - output: `[B, N, ...spatial]`
#[must_use]
pub fn weighted_sum<const D: usize>(activation: Tensor<D>, weights: Tensor<3>) -> Tensor<D> {
    let dims = activation.dims();
    let maps = weights.matmul(flatten_spatial(activation));
    unflatten_spatial(maps, &dims[2..])
}

/// `Σ_k w[b, n, k] · a[b, k]`, or with `eigen_smooth` the projection of
/// `w ⊙ a` on its first principal component (pytorch-grad-cam's
/// `eigen_smooth`, see [`principal_projection`]).
///
/// # Shapes
/// - `activation`: `[B, K, ...spatial]`
/// - `weights`: `[B, N, K]`
/// - output: `[B, N, ...spatial]`
pub(crate) fn weighted_maps<const D: usize>(
    activation: Tensor<D>,
    weights: Tensor<3>,
    eigen_smooth: bool,
) -> crate::Result<Tensor<D>> {
    if !eigen_smooth {
        return Ok(weighted_sum(activation, weights));
    }
    let dims = activation.dims();
    let a = flatten_spatial(activation).unsqueeze_dim::<4>(1);
    channel_sum(weights.unsqueeze_dim::<4>(3) * a, &dims[2..], true)
}

/// Per-position channel terms `[B, N, K, P]` summed over the channels, or
/// projected on their first principal component with `eigen_smooth`,
/// reshaped to `[B, N, ...spatial]`.
pub(crate) fn channel_sum<const D: usize>(
    terms: Tensor<4>,
    spatial: &[usize],
    eigen_smooth: bool,
) -> crate::Result<Tensor<D>> {
    let maps = if eigen_smooth {
        principal_projection(terms)?.0
    } else {
        terms.sum_dim(2).squeeze_dim::<3>(2)
    };
    Ok(unflatten_spatial(maps, spatial))
}

/// The tap's activation and gradients laid out for element-wise CAMs.
pub(crate) struct TapTerms {
    pub scores: Tensor<2>,
    pub indices: Tensor<2, Int>,
    /// `[B, 1, K, P]`.
    pub activation: Tensor<4>,
    /// `[B, N, K, P]`.
    pub gradients: Tensor<4>,
    /// The tap's spatial shape.
    pub spatial: Vec<usize>,
}

/// [`Probe::tap_gradients`] with the activation and gradients flattened to
/// `[B, 1, K, P]` and `[B, N, K, P]`; errors name `method`.
pub(crate) fn tap_terms<M: Explainable<D>, const D: usize>(
    probe: &Probe<M, D>,
    input: Tensor<D>,
    targets: &Targets,
    units_per_pass: usize,
    method: &'static str,
) -> crate::Result<TapTerms> {
    probe.require_tap(method)?;
    let t = probe.tap_gradients(input, targets, units_per_pass)?;
    let batch = t.scores.dims()[0];
    let spatial = t.activation.dims()[2..].to_vec();
    Ok(TapTerms {
        activation: flatten_spatial(t.activation).unsqueeze_dim(1),
        gradients: split_units(t.gradients, batch),
        scores: t.scores,
        indices: t.indices,
        spatial,
    })
}

/// An element-wise CAM: `Σ_k terms(A, G)` (or its principal component with
/// `eigen_smooth`), `terms` mapping `[B, 1, K, P]` and `[B, N, K, P]` to
/// `[B, N, K, P]`; errors name `method`.
pub(crate) fn elementwise_cam<M: Explainable<D>, const D: usize>(
    probe: &Probe<M, D>,
    input: Tensor<D>,
    targets: &Targets,
    units_per_pass: usize,
    eigen_smooth: bool,
    method: &'static str,
    terms: fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
) -> crate::Result<crate::Explanation<D>> {
    let t = tap_terms(probe, input, targets, units_per_pass, method)?;
    Ok(crate::Explanation::new(
        t.scores,
        t.indices,
        channel_sum(terms(t.activation, t.gradients), &t.spatial, eigen_smooth)?,
    ))
}
