//! Synthetic tasks whose object locations are known, and small models for
//! them: the ground truth for checking that an explanation points at the
//! object (the *pointing game*), and the data behind the examples.
//!
//! Everything here is deterministic: the same seed gives the same samples
//! and the same initial weights on every platform and backend.

mod pulses;

pub use pulses::{PULSE_CLASSES, PulseNet, PulseTap, Pulses, pulses};

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
