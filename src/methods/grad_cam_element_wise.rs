//! Grad-CAM element-wise.

use burn::config::Config;
use burn::prelude::*;

use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::elementwise_cam;
use crate::probe::Probe;
use crate::targets::Targets;

/// Grad-CAM element-wise: the positive part of each position's activation ×
/// gradient, summed over channels.
///
/// pytorch-grad-cam's `GradCAMElementWise`, a variant of HiResCAM (Draelos &
/// Carin, 2020) that drops negative contributions before summing.
///
/// With `G = ∂s[b, n] / ∂A[b]`: `maps[b, n] = Σ_k max(G[b, n, k] ⊙ A[b, k], 0)`, raw.
/// With a non-negative activation this equals [`LayerCam`](crate::LayerCam).
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// As [`GradCam`](crate::GradCam).
///
/// # Errors
/// No tap selected, `units_per_pass == 0`, and the input and target errors
/// of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, GradCamElementWise, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = GradCamElementWise::new().explain(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct GradCamElementWise {
    /// Target units served by one forward/backward pass.
    #[config(default = 64)]
    pub units_per_pass: usize,
    /// Project the per-position terms on their first principal component
    /// instead of summing over channels (pytorch-grad-cam's `eigen_smooth`).
    #[config(default = false)]
    pub eigen_smooth: bool,
}

/// The per-position terms `max(G ⊙ A, 0)`.
///
/// # Shapes
/// - `activation`: `[B, 1, K, P]`
/// - `gradients`: `[B, N, K, P]`
/// - output: `[B, N, K, P]`
fn terms(activation: Tensor<4>, gradients: Tensor<4>) -> Tensor<4> {
    (gradients * activation).clamp_min(0.0)
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for GradCamElementWise {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let (per_pass, eigen) = (self.units_per_pass, self.eigen_smooth);
        let name = "Grad-CAM element-wise";
        elementwise_cam(probe, input, targets, per_pass, eigen, name, terms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positive_products() {
        let device = Device::flex();
        // One sample, one unit, two channels, two positions.
        let a = Tensor::<4>::from_floats([[[[1.0, -2.0], [3.0, 1.0]]]], &device);
        let g = Tensor::<4>::from_floats([[[[-1.0, 2.0], [2.0, -4.0]]]], &device);
        let expected = Tensor::<3>::from_floats([[[6.0, 0.0]]], &device);
        terms(a, g)
            .sum_dim(2)
            .squeeze_dim::<3>(2)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
