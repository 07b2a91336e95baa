//! Class Activation Mapping.

use burn::config::Config;
use burn::prelude::*;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::methods::weighted_sum;
use crate::probe::Probe;
use crate::targets::Targets;

/// CAM: the activation entering a global-average-pooling + linear head,
/// weighted by the head's class weights.
///
/// Zhou et al., *Learning Deep Features for Discriminative Localization*,
/// CVPR 2016.
///
/// `maps[b, n] = Σ_k A[b, k] · W[k, idx[b, n]]`, with `A` the activation at
/// the probe's tap and `W` the `[K, L]` weights the model reports through
/// [`Explainable::cam_weights`]. The head's bias is not used, there is no
/// division by the number of positions and no ReLU (raw map).
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// One forward pass without autodiff, whatever `N`.
///
/// # Errors
/// No tap selected, no class weights at the tap, weights whose shape does not
/// match the activation and the logits, and the input and target errors of
/// every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Cam, Explainer, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = Cam::new().explain(&probe, x, &Targets::indices([[0], [1]]))?;
/// assert_eq!(e.maps.dims(), [2, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct Cam {}

/// Selects the CAM weights of each target: `[K, L]` → `[B, N, K]`.
#[must_use]
pub fn cam_weights(class_weights: Tensor<2>, indices: Tensor<2, Int>) -> Tensor<3> {
    let [b, n] = indices.dims();
    let k = class_weights.dims()[0];
    class_weights
        .transpose()
        .select(0, indices.reshape([b * n]))
        .reshape([b, n, k])
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for Cam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let tap = probe.require_tap("CAM")?;
        let (output, activation) = probe.activations(input)?;
        let resolved = targets.resolve(&output)?;
        if !resolved.is_output_units() {
            return Err(Error::InvalidTargets {
                reason: "CAM explains output units through the head's class weights \
                         (indices, each, all, top-k, optionally signed), not softmax, \
                         segmentation, similarity or custom scores"
                    .into(),
            });
        }
        let weights = probe
            .model()
            .cam_weights(tap)
            .ok_or_else(|| Error::NoCamWeights {
                tap: format!("{tap:?}"),
            })?
            .without_autodiff();
        let (k, l) = (activation.dims()[1], output.units());
        if weights.dims() != [k, l] {
            return Err(Error::Shape {
                what: "CAM class weights [channels at tap, logits]",
                expected: vec![k, l],
                actual: weights.dims().to_vec(),
            });
        }
        let device = activation.device();
        let indices = resolved.tensor(&device);
        let mut weights = cam_weights(weights, indices.clone());
        if let Some(signs) = resolved.signs(&device) {
            weights = weights * signs.unsqueeze_dim::<3>(2);
        }
        let maps = weighted_sum(activation, weights);
        Ok(Explanation {
            scores: resolved.sample_scores(&output)?,
            indices,
            maps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_columns_per_sample() {
        let device = Device::flex();
        // W[k, l] = 10·k + l for K = 2 channels, L = 3 classes.
        let w = Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]], &device);
        let idx =
            Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 0, 1, 1], [2, 2]), &device);
        let got = cam_weights(w, idx);
        let expected = Tensor::<3>::from_floats(
            [[[2.0, 12.0], [0.0, 10.0]], [[1.0, 11.0], [1.0, 11.0]]],
            &device,
        );
        got.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
    }
}
