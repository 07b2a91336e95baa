//! The pointing game and its energy-based variant.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::tensor_ops::{check_finite, numel, read_f32};

/// The pointing game: does the map's maximum fall on the object (within a
/// tolerance)? And the energy-based pointing game: which share of the map's
/// mass lies on the object?
///
/// Zhang et al., *Top-down Neural Attention by Excitation Backprop*, ECCV
/// 2016, with TorchRay's rules; Wang et al., *Score-CAM*, CVPR Workshops
/// 2020 (energy).
///
/// The point is the map's first maximum in row-major order (smallest row,
/// then smallest column: `argmax` of the flattened map). It is a hit when it
/// lies in the object's mask or some mask pixel `u` is at a squared distance
/// `Σ_a (u_a − point_a)² < tolerance²` (strict; TorchRay's 15-pixel disk).
/// The energy is `Σ map · mask / Σ map`, summed in `f64`: NaN for an
/// all-zero map, and defined for maps `≥ 0` only. Needs no model: the maps
/// come from any explainer, the masks from annotations (boxes through
/// [`box_masks`]).
///
/// # Shapes
/// - maps and masks: `[B, N, ...spatial]` (masks: 1 on the object, 0 off)
/// - [`Pointing::hits`], [`Pointing::energy`]: `[B, N]`
///
/// # Cost
/// Host work linear in the maps' size (the masks' pixels times the ones
/// near the point at most).
///
/// # Errors
/// Maps and masks of different shapes or with an empty dimension, non-finite
/// maps, a negative or non-finite tolerance; for the energy, a negative map
/// value.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::metrics::{PointingGame, box_masks};
///
/// let device = Device::flex();
/// // One 4×6 map whose maximum is at row 1, column 4.
/// let mut values = vec![0.0f32; 24];
/// values[6 + 4] = 1.0;
/// let maps = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 4, 6]), &device);
/// // The object: columns 3..6, rows 0..2 (x0, y0, x1, y1).
/// let masks = box_masks(&[[3, 0, 6, 2]], [1, 1], [4, 6], &device)?;
/// let result = PointingGame::new().evaluate(&maps, &masks)?;
/// assert_eq!(result.points, [vec![1, 4]]);
/// assert_eq!(result.hits.into_data().try_to_vec::<f32>().unwrap(), [1.0]);
/// assert_eq!(result.energy.into_data().try_to_vec::<f32>().unwrap(), [1.0]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct PointingGame {
    /// The hit radius in pixels (default 15, TorchRay's).
    pub tolerance: f64,
}

impl Default for PointingGame {
    fn default() -> Self {
        Self { tolerance: 15.0 }
    }
}

/// A [`PointingGame`] result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pointing {
    /// Each map's point, one coordinate per spatial axis (row, column for
    /// images), row-major over `(b, n)`.
    pub points: Vec<Vec<usize>>,
    /// 1 for a hit, 0 for a miss `[B, N]`; the mean is the game's accuracy.
    pub hits: Tensor<2>,
    /// `Σ map · mask / Σ map` `[B, N]` (NaN for an all-zero map).
    pub energy: Tensor<2>,
}

impl PointingGame {
    /// TorchRay's 15-pixel tolerance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the tolerance (0: the point itself must lie on the object).
    pub fn with_tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Points, hits and energies of `maps` against `masks`.
    ///
    /// # Errors
    /// See the type's documentation.
    pub fn evaluate<const D: usize>(
        &self,
        maps: &Tensor<D>,
        masks: &Tensor<D>,
    ) -> Result<Pointing> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::config(
                "tolerance",
                format!("must be finite and ≥ 0, got {}", self.tolerance),
            ));
        }
        let dims = maps.dims();
        if masks.dims() != dims {
            return Err(Error::Shape {
                what: "pointing-game masks vs the maps [B, N, ...spatial]",
                expected: dims.to_vec(),
                actual: masks.dims().to_vec(),
            });
        }
        crate::tensor_ops::check_not_empty("maps", &dims)?;
        check_finite("maps", maps)?;
        let spatial = &dims[2..];
        let pixels = numel(spatial);
        let map_values = read_f32(maps.clone())?;
        if map_values.iter().any(|&v| v < 0.0) {
            return Err(Error::config(
                "maps",
                "the energy-based pointing game needs maps ≥ 0 (normalise them first)",
            ));
        }
        let mask_values = read_f32(masks.clone())?;
        let coordinates = |mut flat: usize| {
            let mut at = vec![0; spatial.len()];
            for (axis, &size) in spatial.iter().enumerate().rev() {
                at[axis] = flat % size;
                flat /= size;
            }
            at
        };
        let radius2 = self.tolerance * self.tolerance;
        let mut points = Vec::new();
        let mut hits = Vec::new();
        let mut energy = Vec::new();
        for (map, mask) in map_values
            .chunks_exact(pixels)
            .zip(mask_values.chunks_exact(pixels))
        {
            let first_max = map
                .iter()
                .enumerate()
                .fold(0, |best, (i, &v)| if v > map[best] { i } else { best });
            let point = coordinates(first_max);
            let hit = mask[first_max] > 0.5
                || mask.iter().enumerate().any(|(i, &m)| {
                    m > 0.5
                        && coordinates(i)
                            .iter()
                            .zip(&point)
                            .map(|(&u, &p)| (u as f64 - p as f64).powi(2))
                            .sum::<f64>()
                            < radius2
                });
            let (inside, total) = map.iter().zip(mask).fold((0f64, 0f64), |(i, t), (&v, &m)| {
                let v = f64::from(v);
                (if m > 0.5 { i + v } else { i }, t + v)
            });
            points.push(point);
            hits.push(f32::from(u8::from(hit)));
            energy.push((inside / total) as f32);
        }
        let device = maps.device();
        let shape = [dims[0], dims[1]];
        Ok(Pointing {
            points,
            hits: Tensor::from_data(TensorData::new(hits, shape), &device),
            energy: Tensor::from_data(TensorData::new(energy, shape), &device),
        })
    }
}

/// Masks `[B, N, H, W]` from one box per sample and unit, row-major over
/// `(b, n)`: `(x0, y0, x1, y1)` = (first column, first row, end column, end
/// row), ends exclusive — the box covers `mask[y0..y1, x0..x1]`.
///
/// # Errors
/// Not `B · N` boxes, or an empty box or one outside `[H, W]`.
pub fn box_masks(
    boxes: &[[usize; 4]],
    [batch, units]: [usize; 2],
    [h, w]: [usize; 2],
    device: &Device,
) -> Result<Tensor<4>> {
    if boxes.len() != batch * units {
        return Err(Error::Shape {
            what: "boxes (one per sample and unit)",
            expected: vec![batch * units, 4],
            actual: vec![boxes.len(), 4],
        });
    }
    let mut values = vec![0f32; boxes.len() * h * w];
    for (i, (&[x0, y0, x1, y1], mask)) in
        boxes.iter().zip(values.chunks_exact_mut(h * w)).enumerate()
    {
        if x0 >= x1 || y0 >= y1 || x1 > w || y1 > h {
            return Err(Error::config(
                "boxes",
                format!(
                    "box {i} (sample {}, unit {}) = (x0 {x0}, y0 {y0}, x1 {x1}, y1 {y1}) is empty or outside {h}×{w}",
                    i / units,
                    i % units
                ),
            ));
        }
        for row in mask.chunks_exact_mut(w).take(y1).skip(y0) {
            row[x0..x1].iter_mut().for_each(|v| *v = 1.0);
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [batch, units, h, w]),
        device,
    ))
}
