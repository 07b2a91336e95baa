//! Grad-CAM.

use burn::config::Config;
use burn::prelude::*;

use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::weighted_maps;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::split_units;

/// Grad-CAM: the activation at a tap weighted by the spatial mean of the
/// score's gradient.
///
/// Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via
/// Gradient-based Localization*, ICCV 2017.
///
/// With `G = ∂s[b, n] / ∂A[b]`:
/// `α[b, n, k] = mean_p G[b, n, k, p]` and
/// `maps[b, n] = Σ_k α[b, n, k] · A[b, k]`, raw (no ReLU).
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// The layers before the tap run once per pass without autodiff; the layers
/// after it run on `min(N, units_per_pass)` copies of the activation and are
/// differentiated once: `⌈N / units_per_pass⌉` passes in all.
///
/// # Errors
/// No tap selected, `units_per_pass == 0`, and the input and target errors of
/// every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, GradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = GradCam::new().explain(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct GradCam {
    /// Target units served by one forward/backward pass; more units take
    /// more memory (the tapped activation is replicated once per unit).
    #[config(default = 64)]
    pub units_per_pass: usize,
    /// Project `α ⊙ A` on its first principal component instead of summing
    /// over channels (pytorch-grad-cam's `eigen_smooth`; see
    /// [`EigenCam`](crate::EigenCam) for the sign rule).
    #[config(default = false)]
    pub eigen_smooth: bool,
}

/// Grad-CAM weights: the spatial mean of the gradients, `[B, N, K, P]` → `[B, N, K]`.
#[must_use]
pub fn grad_cam_weights(gradients: Tensor<4>) -> Tensor<3> {
    gradients.mean_dim(3).squeeze_dim(3)
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for GradCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        probe.require_tap("Grad-CAM")?;
        let t = probe.tap_gradients(input, targets, self.units_per_pass)?;
        let batch = t.scores.dims()[0];
        let weights = grad_cam_weights(split_units(t.gradients, batch));
        Ok(Explanation {
            scores: t.scores,
            indices: t.indices,
            maps: weighted_maps(t.activation, weights, self.eigen_smooth)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_spatial_means() {
        let device = Device::flex();
        // One sample, one unit, two channels, four positions.
        let g =
            Tensor::<4>::from_floats([[[[1.0, 2.0, 3.0, 6.0], [-4.0, 0.0, 0.0, 0.0]]]], &device);
        let expected = Tensor::<3>::from_floats([[[3.0, -1.0]]], &device);
        grad_cam_weights(g)
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
