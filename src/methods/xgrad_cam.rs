//! XGrad-CAM.

use burn::config::Config;
use burn::prelude::*;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::weighted_maps;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, split_units};

/// XGrad-CAM: Grad-CAM with each channel's gradient averaged under its own
/// activation instead of uniformly.
///
/// Fu et al., *Axiom-based Grad-CAM: Towards Accurate Visualization and
/// Explanation of CNNs*, BMVC 2020.
///
/// With `G = ∂s[b, n] / ∂A[b]`:
/// `w[b, n, k] = Σ_p G[b, n, k, p] · A[b, k, p] / (Σ_p A[b, k, p] + ε)`
/// (pytorch-grad-cam's `XGradCAM`, `ε = 1e-7`; a channel whose
/// denominator is exactly 0 gets `w = 0`) and `maps[b, n] = Σ_k w[b, n, k] · A[b, k]`, raw.
/// The formula assumes a non-negative activation (after a ReLU): where a
/// channel's activations sum to about zero the weight is unbounded.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// As [`GradCam`](crate::GradCam).
///
/// # Errors
/// No tap selected, `units_per_pass == 0`, a negative or non-finite
/// `epsilon`, and the input and target errors of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, Probe, Targets, XGradCam, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = XGradCam::new().explain(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct XGradCam {
    /// Target units served by one forward/backward pass.
    #[config(default = 64)]
    pub units_per_pass: usize,
    /// Added to each channel's activation sum (pytorch-grad-cam: `1e-7`).
    #[config(default = 1e-7)]
    pub epsilon: f64,
    /// Project `w ⊙ A` on its first principal component instead of summing
    /// over channels (pytorch-grad-cam's `eigen_smooth`).
    #[config(default = false)]
    pub eigen_smooth: bool,
}

/// XGrad-CAM weights `Σ_p G·A / (Σ_p A + ε)`.
///
/// # Shapes
/// - `activation`: `[B, 1, K, P]`
/// - `gradients`: `[B, N, K, P]`
/// - output: `[B, N, K]`
#[must_use]
pub fn xgrad_cam_weights(activation: Tensor<4>, gradients: Tensor<4>, epsilon: f64) -> Tensor<3> {
    let numerator = (gradients * activation.clone()).sum_dim(3);
    let denominator = activation.sum_dim(3).add_scalar(epsilon);
    // A channel summing to exactly 0 (with ε = 0) gets weight 0, not NaN.
    let zero = denominator.clone().equal_elem(0.0);
    let defined = zero.clone().bool_not().float();
    (numerator / denominator.mask_fill(zero, 1.0) * defined).squeeze_dim(3)
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for XGradCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(Error::config(
                "epsilon",
                format!("must be finite and ≥ 0, got {}", self.epsilon),
            ));
        }
        probe.require_tap("XGrad-CAM")?;
        let t = probe.tap_gradients(input, targets, self.units_per_pass)?;
        let batch = t.scores.dims()[0];
        let weights = xgrad_cam_weights(
            flatten_spatial(t.activation.clone()).unsqueeze_dim(1),
            split_units(t.gradients, batch),
            self.epsilon,
        );
        Ok(Explanation {
            maps: weighted_maps(t.activation, weights, self.eigen_smooth)?,
            scores: t.scores,
            indices: t.indices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_average_gradients_under_the_activation() {
        let device = Device::flex();
        // One sample, one unit, two channels (the second zero), two positions.
        let a = Tensor::<4>::from_floats([[[[1.0, 3.0], [0.0, 0.0]]]], &device);
        let g = Tensor::<4>::from_floats([[[[2.0, 4.0], [5.0, 5.0]]]], &device);
        // (1·2 + 3·4) / 4 = 3.5; the zero channel gets 0.
        let expected = Tensor::<3>::from_floats([[[3.5, 0.0]]], &device);
        xgrad_cam_weights(a, g, 0.0)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
