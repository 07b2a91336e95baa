//! ImageNet input normalisation, and its inverse for display.

use burn::prelude::*;

/// ImageNet's per-channel mean (RGB), as torchvision's models expect.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

fn per_channel(v: [f32; 3], device: &Device) -> Tensor<4> {
    Tensor::<1>::from_floats(v, device).reshape([1, 3, 1, 1])
}

/// `(x − mean) / std` per channel, for RGB images in `[0, 1]`, `[B, 3, H, W]`.
///
/// ```
/// use burn::prelude::*;
/// use burn_explainable::preprocess::{imagenet_denormalize, imagenet_normalize};
/// let x = Tensor::<4>::full([1, 3, 2, 2], 0.5, &Device::flex());
/// let back = imagenet_denormalize(imagenet_normalize(x.clone()));
/// assert!((back - x).abs().max().into_scalar::<f32>() < 1e-6);
/// ```
#[must_use]
pub fn imagenet_normalize(images: Tensor<4>) -> Tensor<4> {
    let device = images.device();
    (images - per_channel(IMAGENET_MEAN, &device)) / per_channel(IMAGENET_STD, &device)
}

/// The inverse of [`imagenet_normalize`]: back to `[0, 1]` RGB (unclamped).
#[must_use]
pub fn imagenet_denormalize(x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    x * per_channel(IMAGENET_STD, &device) + per_channel(IMAGENET_MEAN, &device)
}
