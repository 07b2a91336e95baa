//! Grad-CAM++.

use burn::config::Config;
use burn::prelude::*;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::weighted_maps;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, split_units};

/// Grad-CAM++: Grad-CAM with pixel-wise weights of the positive gradients.
///
/// Chattopadhyay et al., *Grad-CAM++: Improved Visual Explanations for Deep
/// Convolutional Networks*, WACV 2018.
///
/// With `G = ∂s[b, n] / ∂A[b]` and `S[b, k] = Σ_p A[b, k, p]`:
/// `a = G² / (2·G² + S·G³ + ε)` (0 where the denominator is 0),
/// `w[b, n, k] = Σ_p a · max(G, 0)`,
/// `maps[b, n] = Σ_k w[b, n, k] · A[b, k]`, raw (no ReLU).
///
/// keras-explainable multiplies the gradients by `exp(s[b, n])`; that factor
/// is a positive constant per map (it cancels in every normalised map) and
/// overflows for scores above ~88, so it is dropped. `ε = 0` is
/// keras-explainable's formula; pytorch-grad-cam uses `ε = 1e-6`.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// As [`GradCam`](crate::GradCam): `⌈N / units_per_pass⌉` passes, each a
/// forward pass and a backward pass through the layers after the tap only.
///
/// # Errors
/// No tap selected, `units_per_pass == 0`, a negative or non-finite `epsilon`,
/// and the input and target errors of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, GradCamPlusPlus, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = GradCamPlusPlus::new().explain(&probe, x, &Targets::indices([[1]]))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct GradCamPlusPlus {
    /// Target units served by one forward/backward pass.
    #[config(default = 64)]
    pub units_per_pass: usize,
    /// Added to the denominator of the pixel weights (`1e-6` reproduces
    /// pytorch-grad-cam).
    #[config(default = 0.0)]
    pub epsilon: f64,
    /// Project `w ⊙ A` on its first principal component instead of summing
    /// over channels (pytorch-grad-cam's `eigen_smooth`).
    #[config(default = false)]
    pub eigen_smooth: bool,
}

/// Grad-CAM++ weights from the activation `[B, K, P]` and the gradients
/// `[B, N, K, P]`: `[B, N, K]`.
#[must_use]
pub fn grad_cam_plus_plus_weights(
    activation: Tensor<3>,
    gradients: Tensor<4>,
    epsilon: f64,
) -> Tensor<3> {
    let sum_a = activation.sum_dim(2).unsqueeze_dim::<4>(1); // [B, 1, K, 1]
    let g2 = gradients.clone().powi_scalar(2);
    let g3 = g2.clone() * gradients.clone();
    let denominator = g2.clone().mul_scalar(2.0) + sum_a * g3;
    let denominator = if epsilon != 0.0 {
        denominator.add_scalar(epsilon)
    } else {
        denominator
    };
    let zero = denominator.clone().equal_elem(0.0);
    let alpha = (g2 / denominator.mask_fill(zero.clone(), 1.0)).mask_fill(zero, 0.0);
    (alpha * gradients.clamp_min(0.0)).sum_dim(3).squeeze_dim(3)
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for GradCamPlusPlus {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        if !(self.epsilon >= 0.0 && self.epsilon.is_finite()) {
            return Err(Error::config(
                "epsilon",
                format!("must be finite and ≥ 0, got {}", self.epsilon),
            ));
        }
        probe.require_tap("Grad-CAM++")?;
        let t = probe.tap_gradients(input, targets, self.units_per_pass)?;
        let batch = t.scores.dims()[0];
        let weights = grad_cam_plus_plus_weights(
            flatten_spatial(t.activation.clone()),
            split_units(t.gradients, batch),
            self.epsilon,
        );
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
    fn pixel_weights_by_hand() {
        let device = Device::flex();
        // One sample, one unit, one channel, two positions.
        // A = [1, 3] so S = 4. G = [1, -1]:
        //   p0: a = 1 / (2 + 4·1) = 1/6, relu(G) = 1  -> 1/6
        //   p1: a = 1 / (2 − 4)  = −1/2, relu(G) = 0  -> 0
        // w = 1/6.
        let a = Tensor::<3>::from_floats([[[1.0, 3.0]]], &device);
        let g = Tensor::<4>::from_floats([[[[1.0, -1.0]]]], &device);
        let w = grad_cam_plus_plus_weights(a, g, 0.0);
        let expected = Tensor::<3>::from_floats([[[1.0 / 6.0]]], &device);
        w.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }

    #[test]
    fn zero_denominator_gives_zero_weight() {
        let device = Device::flex();
        // G = 0 everywhere: 0/0 is defined as 0, not NaN.
        let a = Tensor::<3>::from_floats([[[1.0, 2.0]]], &device);
        let g = Tensor::<4>::zeros([1, 1, 1, 2], &device);
        let w = grad_cam_plus_plus_weights(a, g, 0.0);
        assert_eq!(w.into_data().try_to_vec::<f32>().unwrap(), vec![0.0]);
    }
}
