//! Post-processing filters over the spatial axes of maps `[B, N, ...spatial]`.
//!
//! "Normalise" is always a min-max normalisation per `(b, n)` slice over
//! every spatial axis: `y = x − min(x)`, then `y / max(y)`. A constant slice
//! becomes all zeros, never NaN.
//!
//! ```
//! use burn::prelude::*;
//! use burn_explainable::filters;
//!
//! let device = Device::flex();
//! let maps = Tensor::<4>::from_floats([[[[-1.0, 0.0], [1.0, 3.0]]]], &device);
//! let out = filters::positive_normalize(maps);
//! let expected = Tensor::<4>::from_floats([[[[0.0, 0.0], [1.0 / 3.0, 1.0]]]], &device);
//! out.into_data().assert_approx_eq::<f32>(&expected.into_data(), Default::default());
//! ```

use burn::prelude::*;

use crate::tensor_ops::flatten_spatial;

/// A post-processing filter, applied to each `(b, n)` map independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Filter {
    /// Min-max normalisation to `[0, 1]`.
    Normalize,
    /// `max(x, 0)`.
    Positive,
    /// `min(x, 0)`: the negative part (keras-explainable's `negative` is a
    /// copy of `positive`; this is the fixed version).
    Negative,
    /// `|x|`.
    Absolute,
    /// `normalize(max(x, 0))`: the default for CAMs.
    PositiveNormalize,
    /// `normalize(|x|)`: FullGrad's default ψ.
    AbsoluteNormalize,
    /// `normalize(|min(x, 0)|)`.
    NegativeNormalize,
    /// pytorch-grad-cam's `scale_cam_image` normalisation:
    /// `(x − min) / (1e-7 + max(x − min))`.
    Scale,
    /// `scale(max(x, 0))`: pytorch-grad-cam's post-processing of a CAM.
    PositiveScale,
    /// `scale(|x|)`: pytorch-grad-cam's FullGrad terms.
    AbsoluteScale,
}

impl Filter {
    /// Applies the filter to maps `[B, N, ...spatial]`.
    #[must_use]
    pub fn apply<const D: usize>(self, maps: Tensor<D>) -> Tensor<D> {
        match self {
            Filter::Normalize => normalize(maps),
            Filter::Positive => positive(maps),
            Filter::Negative => negative(maps),
            Filter::Absolute => maps.abs(),
            Filter::PositiveNormalize => positive_normalize(maps),
            Filter::AbsoluteNormalize => absolute_normalize(maps),
            Filter::NegativeNormalize => negative_normalize(maps),
            Filter::Scale => scale(maps),
            Filter::PositiveScale => scale(positive(maps)),
            Filter::AbsoluteScale => scale(maps.abs()),
        }
    }
}

/// Min-max normalisation of each `(b, n)` slice over the spatial axes.
/// A constant slice becomes zeros.
#[must_use]
pub fn normalize<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    let dims = maps.dims();
    let flat = flatten_spatial(maps);
    let shifted = flat.clone() - flat.min_dim(2);
    let max = shifted.clone().max_dim(2);
    // A slice whose maximum is 0 is all zeros: dividing it by 1 keeps it so.
    let max = max.clone().mask_fill(max.equal_elem(0.0), 1.0);
    (shifted / max).reshape(dims)
}

/// The epsilon of pytorch-grad-cam's normalisation.
pub const SCALE_EPSILON: f32 = 1e-7;

/// pytorch-grad-cam's `scale_cam_image` normalisation of each `(b, n)`
/// slice: `(x − min) / (1e-7 + max(x − min))`. A constant slice becomes
/// zeros; a slice whose range is far below `1e-7` stays far below 1.
#[must_use]
pub fn scale<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    let dims = maps.dims();
    let flat = flatten_spatial(maps);
    let shifted = flat.clone() - flat.min_dim(2);
    let max = shifted.clone().max_dim(2).add_scalar(SCALE_EPSILON);
    (shifted / max).reshape(dims)
}

/// `max(x, 0)`.
#[must_use]
pub fn positive<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    maps.clamp_min(0.0)
}

/// `min(x, 0)`.
#[must_use]
pub fn negative<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    maps.clamp_max(0.0)
}

/// `normalize(max(x, 0))`.
#[must_use]
pub fn positive_normalize<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    normalize(positive(maps))
}

/// `normalize(|x|)`.
#[must_use]
pub fn absolute_normalize<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    normalize(maps.abs())
}

/// `normalize(|min(x, 0)|)`.
#[must_use]
pub fn negative_normalize<const D: usize>(maps: Tensor<D>) -> Tensor<D> {
    normalize(negative(maps).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_divides_by_the_range_plus_epsilon() {
        let device = Device::flex();
        // A map of range 2 and a map of range 1e-8, far below the epsilon.
        let maps = Tensor::<3>::from_floats([[[1.0, 3.0, 2.0], [0.0, 1e-8, 0.0]]], &device);
        let out: Vec<f32> = scale(maps)
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        let expected = [
            0.0,
            2.0 / (2.0 + 1e-7),
            1.0 / (2.0 + 1e-7),
            0.0,
            1e-8 / (1e-8 + 1e-7),
            0.0,
        ];
        for (o, e) in out.iter().zip(expected) {
            assert!(
                (o - e).abs() <= 1e-6 * e.abs().max(1e-3),
                "{out:?} vs {expected:?}"
            );
        }
    }
}
