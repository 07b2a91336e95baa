//! The explanation methods: one file each, each holding its config, its math
//! and its unit tests. The shared plumbing is the [`Probe`](crate::Probe).

mod attention_rollout;
mod cam;
mod full_grad;
mod grad_cam;
mod grad_cam_plus_plus;
mod saliency;
mod score_cam;

pub use attention_rollout::{AttentionRollout, HeadFusion, rollout_matrix};
pub use cam::{Cam, cam_weights};
pub use full_grad::{ChannelReduction, FullGrad, full_grad_maps};
pub use grad_cam::{GradCam, grad_cam_weights};
pub use grad_cam_plus_plus::{GradCamPlusPlus, grad_cam_plus_plus_weights};
pub use saliency::{GradientFilter, ROWS_PER_PASS, Saliency, channel_mean};
pub use score_cam::{ScoreCam, score_cam_masks};

use burn::prelude::*;

use crate::tensor_ops::{flatten_spatial, unflatten_spatial};

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
