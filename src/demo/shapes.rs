//! 2-D: one shape on a textured background; the shape is the class.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// The shape classes, in label order.
pub const SHAPE_CLASSES: [&str; 4] = ["circle", "square", "triangle", "cross"];

/// A pixel box `[top, left, bottom, right)` (bottom and right exclusive).
pub type BoundingBox = [usize; 4];

/// A batch of synthetic images.
#[derive(Debug, Clone)]
pub struct Shapes {
    /// RGB images in `[0, 1]`, `[n, 3, size, size]`.
    pub images: Tensor<4>,
    /// The class of each image (an index into [`SHAPE_CLASSES`]).
    pub labels: Vec<usize>,
    /// The object's bounding box in each image.
    pub boxes: Vec<BoundingBox>,
    /// The object's pixels in each image, `[n, size, size]`: 1 inside the
    /// shape, 0 outside (the ground truth of a segmentation).
    pub masks: Tensor<3>,
}

/// `n` RGB images of `size × size` pixels (`size ≥ 32`), each with one
/// filled shape (circle, square, triangle or cross) whose side is 34–50% of
/// the image (at least a third, so that even a 32-pixel-stride map has a cell
/// centre on it), at a random position, in a random colour that contrasts with
/// a textured background (a random-colour gradient, a sinusoidal grating of
/// random orientation and pixel noise).
///
/// # Errors
/// [`Error::InvalidConfig`] if `size < 32` or `n == 0`.
///
/// ```
/// use burn::prelude::*;
/// let s = burn_explainable::demo::shapes(2, 64, 3, &Device::flex())?;
/// assert_eq!(s.images.dims(), [2, 3, 64, 64]);
/// assert!(s.boxes.iter().all(|b| b[0] < b[2] && b[2] <= 64 && b[1] < b[3] && b[3] <= 64));
/// # Ok::<(), burn_explainable::Error>(())
/// ```
pub fn shapes(n: usize, size: usize, seed: u64, device: &Device) -> Result<Shapes> {
    if size < 32 || n == 0 {
        return Err(Error::config(
            "shapes",
            format!("need n ≥ 1 images of size ≥ 32, got n = {n}, size = {size}"),
        ));
    }
    let mut rng = SplitMix64(seed ^ 0x5348_4150_4553);
    let plane = size * size;
    let mut values = vec![0f32; n * 3 * plane];
    let mut masks = vec![0f32; n * plane];
    let (mut labels, mut boxes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (image, mask) in values.chunks_mut(3 * plane).zip(masks.chunks_mut(plane)) {
        let class = rng.below(SHAPE_CLASSES.len());
        let side = ((0.34 + 0.16 * rng.range(0.0, 1.0)) * size as f32) as usize;
        let (top, left) = (rng.below(size - side + 1), rng.below(size - side + 1));

        // Background: a gradient between two colours, a grating, noise.
        let c0: [f32; 3] = std::array::from_fn(|_| rng.range(0.2, 0.8));
        let c1: [f32; 3] = std::array::from_fn(|_| rng.range(0.2, 0.8));
        let (angle, freq) = (rng.range(0.0, std::f32::consts::PI), rng.range(2.0, 6.0));
        let phase = rng.range(0.0, std::f32::consts::TAU);
        let noise = rng.normals(3 * plane);
        let mean_bg: f32 = (0..3).map(|c| (c0[c] + c1[c]) / 6.0).sum();
        // The object: a colour whose brightness is far from the background's.
        let bright = mean_bg < 0.5;
        let object: [f32; 3] = std::array::from_fn(|_| {
            if bright {
                rng.range(0.75, 1.0)
            } else {
                rng.range(0.0, 0.25)
            }
        });
        for y in 0..size {
            for x in 0..size {
                let (u, v) = (x as f32 / size as f32, y as f32 / size as f32);
                let t = (u + v) / 2.0;
                let along = u * angle.cos() + v * angle.sin();
                let grating = 0.12 * (std::f32::consts::TAU * freq * along + phase).sin();
                let inside = inside_shape(
                    class,
                    side,
                    y as isize - top as isize,
                    x as isize - left as isize,
                );
                if inside {
                    mask[y * size + x] = 1.0;
                }
                for c in 0..3 {
                    let i = c * plane + y * size + x;
                    let bg = c0[c] * (1.0 - t) + c1[c] * t + grating + 0.04 * noise[i];
                    let value = if inside {
                        object[c] + 0.04 * noise[i]
                    } else {
                        bg
                    };
                    image[i] = value.clamp(0.0, 1.0);
                }
            }
        }
        labels.push(class);
        boxes.push([top, left, top + side, left + side]);
    }
    Ok(Shapes {
        images: Tensor::from_data(TensorData::new(values, [n, 3, size, size]), device),
        labels,
        boxes,
        masks: Tensor::from_data(TensorData::new(masks, [n, size, size]), device),
    })
}

/// Whether pixel `(y, x)` (relative to the shape's box of side `side`) lies
/// in the shape of class `class`. Every shape touches all four box sides.
fn inside_shape(class: usize, side: usize, y: isize, x: isize) -> bool {
    let s = side as f32;
    if y < 0 || x < 0 || y >= side as isize || x >= side as isize {
        return false;
    }
    let (fy, fx) = (y as f32 + 0.5, x as f32 + 0.5);
    match class {
        // Circle inscribed in the box.
        0 => (fy - s / 2.0).powi(2) + (fx - s / 2.0).powi(2) <= (s / 2.0).powi(2),
        // Square: the box itself.
        1 => true,
        // Triangle pointing up: the half-width grows from 0 at the top.
        2 => (fx - s / 2.0).abs() <= fy / 2.0,
        // Cross: two bars a third of the side thick.
        _ => {
            let bar = |f: f32| (f - s / 2.0).abs() <= s / 6.0;
            bar(fy) || bar(fx)
        }
    }
}
