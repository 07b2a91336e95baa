//! Layer-CAM.

use burn::config::Config;
use burn::prelude::*;

use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::elementwise_cam;
use crate::probe::Probe;
use crate::targets::Targets;

/// Layer-CAM: the activation weighted position by position by the positive
/// part of the gradient; meant for shallow taps, where Grad-CAM's averaged
/// weights blur.
///
/// Jiang et al., *LayerCAM: Exploring Hierarchical Class Activation Maps
/// for Localization*, IEEE TIP 2021.
///
/// With `G = ∂s[b, n] / ∂A[b]`: `maps[b, n] = Σ_k max(G[b, n, k], 0) ⊙ A[b, k]`,
/// raw (pytorch-grad-cam's `LayerCAM`).
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
/// use burn_explainable::{Explainer, LayerCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = LayerCam::new().explain(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct LayerCam {
    /// Target units served by one forward/backward pass.
    #[config(default = 64)]
    pub units_per_pass: usize,
    /// Project the per-position terms on their first principal component
    /// instead of summing over channels (pytorch-grad-cam's `eigen_smooth`).
    #[config(default = false)]
    pub eigen_smooth: bool,
}

/// The per-position terms `max(G, 0) ⊙ A`.
///
/// # Shapes
/// - `activation`: `[B, 1, K, P]`
/// - `gradients`: `[B, N, K, P]`
/// - output: `[B, N, K, P]`
fn terms(activation: Tensor<4>, gradients: Tensor<4>) -> Tensor<4> {
    gradients.clamp_min(0.0) * activation
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for LayerCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let (per_pass, eigen) = (self.units_per_pass, self.eigen_smooth);
        elementwise_cam(probe, input, targets, per_pass, eigen, "Layer-CAM", terms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_positions_by_positive_gradients() {
        let device = Device::flex();
        // One sample, one unit, two channels, two positions.
        let a = Tensor::<4>::from_floats([[[[1.0, -2.0], [3.0, 1.0]]]], &device);
        let g = Tensor::<4>::from_floats([[[[-1.0, 2.0], [2.0, -4.0]]]], &device);
        let expected = Tensor::<3>::from_floats([[[6.0, -4.0]]], &device);
        terms(a, g)
            .sum_dim(2)
            .squeeze_dim::<3>(2)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
