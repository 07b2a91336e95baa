//! Eigen-CAM and Eigen-Grad-CAM, and the principal-component projection
//! behind eigen smoothing.

use burn::prelude::*;

use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation};
use crate::linalg::{Centred, top_eigenpair};
use crate::methods::{channel_sum, tap_terms};
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_spatial, read_f32, unflatten_spatial};

/// Eigen-CAM: the activation at a tap projected on its first principal
/// component. No gradients and no targets: every unit of a sample gets the
/// same map (the scores and indices are still those of the targets).
///
/// Muhammad & Yeasin, *Eigen-CAM: Class Activation Map using Principal
/// Components*, IJCNN 2020.
///
/// With `M[b]` the tap's activation as a `positions × channels` matrix,
/// each channel centred over the positions, and `v₁` its first right
/// singular vector: `maps[b, n] = M[b] v₁ = s₁ u₁`, reshaped to the tap's
/// grid (pytorch-grad-cam's `get_2d_projection`).
///
/// **Sign.** A principal direction is defined up to sign, and
/// pytorch-grad-cam leaves it to LAPACK: its maps (after the ReLU that
/// keeps one side) can come out inverted from one run or library to the
/// next. This crate fixes it: the entry of largest magnitude is positive
/// (the rule of pytorch-grad-cam's Seg-Eigen-CAM sign correction), so the
/// map is deterministic. Multiply by −1 to get the other side.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// One forward pass, no backward; then per sample a Gram matrix of size
/// `min(positions, channels)` and its top eigenvector by power iteration,
/// on the host in `f64` (measured on ResNet-50, batch 8, 224², a 7×7 tap
/// with 2048 channels: Eigen-CAM 1.01× the forward pass).
///
/// # Errors
/// No tap selected, and the input and target errors of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{EigenCam, Explainer, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = EigenCam::new().explain(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [2, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
#[must_use]
pub struct EigenCam;

impl EigenCam {
    /// Eigen-CAM (it has no options).
    pub fn new() -> Self {
        Self
    }
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for EigenCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        probe.require_tap("Eigen-CAM")?;
        let (output, activation) = probe.activations(input)?;
        let resolved = targets.resolve(&output)?;
        let dims = activation.dims();
        let device = activation.device();
        let (maps, _) = principal_projection(flatten_spatial(activation).unsqueeze_dim(1))?;
        let [b, _, p] = maps.dims();
        let maps = maps.expand([b, resolved.units, p]);
        Ok(Explanation {
            scores: resolved.sample_scores(&output)?,
            indices: resolved.tensor(&device),
            maps: unflatten_spatial(maps, &dims[2..]),
        })
    }
}

/// Eigen-Grad-CAM: the gradient-weighted activation `G ⊙ A` projected on
/// its first principal component, per sample and unit.
///
/// pytorch-grad-cam's `EigenGradCAM`: `maps[b, n] = P(G[b, n] ⊙ A[b])` with
/// `P` the projection of [`EigenCam`] (same sign rule) and
/// `G = ∂s[b, n] / ∂A[b]`.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial_tap]`, at the tap's resolution
///
/// # Cost
/// The passes of [`GradCam`](crate::GradCam), then one principal component
/// per map (see [`EigenCam`]).
///
/// # Errors
/// No tap selected, `units_per_pass == 0`, and the input and target errors
/// of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{EigenGradCam, Explainer, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = EigenGradCam::new().explain(&probe, x, &Targets::indices([[0, 2]]))?;
/// assert_eq!(e.maps.dims(), [1, 2, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(burn::config::Config, Debug)]
#[non_exhaustive]
#[must_use]
pub struct EigenGradCam {
    /// Target units served by one forward/backward pass.
    #[config(default = 64)]
    pub units_per_pass: usize,
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for EigenGradCam {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let t = tap_terms(probe, input, targets, self.units_per_pass, "Eigen-Grad-CAM")?;
        Ok(Explanation {
            maps: channel_sum(t.gradients * t.activation, &t.spatial, true)?,
            scores: t.scores,
            indices: t.indices,
        })
    }
}

/// The projection of each `[K, P]` slice (channels × positions) on its first
/// principal component, with the sign rule of [`EigenCam`], and the first
/// singular value: pytorch-grad-cam's `get_2d_projection` per map.
///
/// The channels are centred over the positions and the Gram matrix of the
/// smaller side (`min(K, P)` square) is formed on the device; its top
/// eigenvector is found on the host in `f64` by power iteration.
///
/// # Shapes
/// - `weighted`: `[B, N, K, P]`
/// - output: projections `[B, N, P]` and `s₁` `[B, N]`
///
/// # Errors
/// A backend that cannot hand the values to the host.
pub fn principal_projection(weighted: Tensor<4>) -> crate::Result<(Tensor<3>, Tensor<2>)> {
    let [b, n, k, p] = weighted.dims();
    let device = weighted.device();
    let rows = b * n;
    // Mᵀ per map, `[rows, K, P]`: each channel centred over the positions.
    let centred = (weighted.clone() - weighted.mean_dim(3)).reshape([rows, k, p]);
    let by_position = p <= k;
    let gram = if by_position {
        centred.clone().swap_dims(1, 2).matmul(centred.clone()) // M Mᵀ, [rows, P, P]
    } else {
        centred.clone().matmul(centred.clone().swap_dims(1, 2)) // Mᵀ M, [rows, K, K]
    };
    let m = p.min(k);
    let grams = read_f32(gram.reshape([rows, 1, m, m]))?;
    let (mut vectors, mut singular) = (Vec::with_capacity(rows * m), Vec::with_capacity(rows));
    for slice in grams.chunks_exact(m * m) {
        let g: Vec<f64> = slice.iter().map(|&x| f64::from(x)).collect();
        let (lambda, v) = top_eigenpair(&g, m);
        let s1 = lambda.max(0.0).sqrt();
        // M Mᵀ gives u₁ (the projection is s₁ u₁); Mᵀ M gives v₁ (it is M v₁).
        let scale = if by_position { s1 } else { 1.0 };
        vectors.extend(v.iter().map(|x| (x * scale) as f32));
        singular.push(s1 as f32);
    }
    let vectors = Tensor::<3>::from_data(TensorData::new(vectors, [rows, m, 1]), &device);
    let projection = if by_position {
        vectors
    } else {
        centred.swap_dims(1, 2).matmul(vectors)
    }
    .reshape([rows, p]);
    // The canonical sign: the entry of largest magnitude positive.
    let flip = projection
        .clone()
        .max_dim(1)
        .lower(projection.clone().min_dim(1).neg())
        .float();
    let projection = projection * flip.mul_scalar(-2.0).add_scalar(1.0);
    Ok((
        projection.reshape([b, n, p]),
        Tensor::from_data(TensorData::new(singular, [b, n]), &device),
    ))
}

/// Every singular value of each centred `[K, P]` slice, descending (for
/// diagnostics: how dominant the first component is).
///
/// # Shapes
/// - `weighted`: `[B, N, K, P]`
/// - output: `[B, N, min(K, P)]`
///
/// # Cost
/// Jacobi rotations on a Gram matrix of size `m = min(K, P)`: `O(m³)` per
/// slice on the host.
///
/// # Errors
/// A backend that cannot hand the values to the host.
pub fn singular_values(weighted: Tensor<4>) -> crate::Result<Tensor<3>> {
    let [b, n, k, p] = weighted.dims();
    let device = weighted.device();
    let values = read_f32(weighted)?;
    let all: Vec<f32> = values
        .chunks_exact(k * p)
        .flat_map(|slice| Centred::new(slice, k, p).singular_values())
        .map(|v| v as f32)
        .collect();
    Ok(Tensor::from_data(
        TensorData::new(all, [b, n, k.min(p)]),
        &device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device Gram path against the host `f64` projection, on both
    /// sides (more channels than positions, and fewer).
    #[test]
    fn device_projection_matches_the_host_one() {
        let device = Device::flex();
        for (k, p) in [(5, 3), (3, 5)] {
            let values: Vec<f32> = (0..2 * k * p)
                .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
                .collect();
            let t = Tensor::<4>::from_data(TensorData::new(values.clone(), [2, 1, k, p]), &device);
            let (projection, s1) = principal_projection(t).unwrap();
            let got: Vec<f32> = projection
                .into_data()
                .convert::<f32>()
                .try_to_vec()
                .unwrap();
            let s1: Vec<f32> = s1.into_data().convert::<f32>().try_to_vec().unwrap();
            for (i, slice) in values.chunks_exact(k * p).enumerate() {
                let (want, want_s1) = Centred::new(slice, k, p).principal_projection();
                assert!((f64::from(s1[i]) - want_s1).abs() < 1e-5 * want_s1, "s1");
                for (g, w) in got[i * p..(i + 1) * p].iter().zip(&want) {
                    assert!((f64::from(*g) - w).abs() < 1e-5 * want_s1, "{g} vs {w}");
                }
            }
        }
    }
}
