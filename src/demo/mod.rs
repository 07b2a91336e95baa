//! Synthetic tasks whose object locations are known, and small models for
//! them: the ground truth for checking that an explanation points at the
//! object (the *pointing game*), and the data behind the examples.
//!
//! Everything here is deterministic: the same seed gives the same samples
//! and the same initial weights on every platform and backend.

mod pulses;
mod shapes;

pub use pulses::{PULSE_CLASSES, PulseNet, PulseTap, Pulses, pulses};
pub use shapes::{BoundingBox, SHAPE_CLASSES, Shapes, shapes};

use burn::prelude::*;

use crate::rng::SplitMix64;

/// `U(-bound, bound)` values of the given shape, from `rng`.
fn uniform<const D: usize>(
    rng: &mut SplitMix64,
    shape: [usize; D],
    bound: f32,
    device: &Device,
) -> Tensor<D> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.range(-bound, bound)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Whether the argmax of `map` (a flattened spatial map) lies in `inside`,
/// a predicate on flat indices. Ties go to the first maximum.
pub fn points_inside(map: &[f32], inside: impl Fn(usize) -> bool) -> bool {
    let best = map
        .iter()
        .enumerate()
        .fold(None::<(usize, f32)>, |best, (i, &v)| match best {
            Some((_, b)) if b >= v || v.is_nan() => best,
            _ => Some((i, v)),
        });
    best.is_some_and(|(i, _)| inside(i))
}

#[cfg(feature = "resnet")]
mod shapes_model {
    use burn::prelude::*;

    use crate::error::Result;
    use crate::models::resnet::{BlockKind, ResNet, ResNetConfig};

    /// The weights of the embedded demo model (torchvision layout), trained
    /// by `examples/train_shapes.rs`.
    static WEIGHTS: &[u8] = include_bytes!("../../assets/shapes_resnet.safetensors");

    /// The architecture of the embedded demo model: a narrow ResNet with one
    /// basic block per stage, 16 stem channels and the 4 shape classes.
    pub fn shapes_resnet_config() -> ResNetConfig {
        ResNetConfig::new(BlockKind::Basic, [1, 1, 1, 1])
            .with_planes(16)
            .with_num_classes(super::SHAPE_CLASSES.len())
    }

    /// The embedded demo model, trained on [`shapes`](super::shapes) images
    /// of 96×96 pixels normalised with
    /// [`imagenet_normalize`](crate::preprocess::imagenet_normalize).
    /// Works offline: the weights are compiled into the crate.
    pub fn shapes_resnet(device: &Device) -> Result<ResNet> {
        ResNet::load_safetensors_bytes(&shapes_resnet_config(), WEIGHTS.to_vec(), device)
    }
}

#[cfg(feature = "resnet")]
pub use shapes_model::{shapes_resnet, shapes_resnet_config};
