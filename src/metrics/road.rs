//! ROAD: RemOve And Debias.

use burn::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::Explainable;
use crate::metrics::{Clean, rows_per_pass};
use crate::probe::Probe;
use crate::rng::SplitMix64;
use crate::targets::Targets;
use crate::tensor_ops::read_f32;

/// Which pixels [`Road`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoadOrder {
    /// MoRF: the most relevant ones (a good map makes the score fall).
    MostRelevantFirst,
    /// LeRF: the least relevant ones (a good map keeps the score).
    LeastRelevantFirst,
}

/// ROAD: the score change when the most (least) relevant pixels are removed
/// and imputed from their neighbours, so that the removal's shape does not
/// leak the map to the model.
///
/// Rong et al., *A Consistent and Efficient Evaluation Strategy for
/// Attribution Methods*, ICML 2022; conventions of pytorch-grad-cam's
/// `ROADMostRelevantFirst`, `ROADLeastRelevantFirst` and `ROADCombined`.
///
/// For each percentile `p` and sample, [`road_keep`] decides the removed
/// pixels: MoRF removes every pixel with `map ≥ t`, `t` =
/// [`percentile_threshold`]`(map, p)` (about the top `100 − p` %; a plateau
/// at `t` is removed whole), LeRF every pixel with `1 − map ≥
/// percentile_threshold(1 − map, p)` (`1 − map` in `f32`). The removed
/// pixels are imputed by [`linear_impute`] (each the weighted mean of its 8
/// neighbours, edge neighbours 1/6, diagonal 1/12), plus `noise · N(0, 1)`
/// (pytorch-grad-cam's default 0.01; [`with_noise(0.0)`](Self::with_noise)
/// reproduces it exactly); the result is `s1 − s0`, the imputed copy's score
/// minus the input's. [`RoadScores::combined`] is `ROADCombined`,
/// `(mean_p LeRF_p − mean_p MoRF_p) / 2`.
///
/// # Shapes
/// - input: `[B, C, H, W]` (images: the imputation is two-dimensional)
/// - maps: `[B, N, H, W]`
/// - scores: `[B, N, P]` per percentile
///
/// # Cost
/// One forward pass of the input, then `2 · P` imputed copies of every
/// sample and unit, in passes of `rows_per_pass` rows. Each imputation is a
/// sparse symmetric positive definite solve on the host (`f64` envelope
/// Cholesky, about `r · (W + 2)²` operations for `r` removed pixels of a
/// `W`-wide image), copies in parallel.
///
/// # Errors
/// An input not of rank 4, no percentile or one outside `[0, 100]`, a
/// negative or non-finite noise, `rows_per_pass == 0`, maps not shaped
/// `[B, N, H, W]` or not finite, and the input and target errors of every
/// method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::metrics::Road;
/// use burn_explainable::{Explainer, GradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::random([1, 3, 8, 8], burn::tensor::Distribution::Default, &device);
/// let targets = Targets::top_k(1).softmax();
/// let maps = GradCam::new().explain(&probe, x.clone(), &targets)?.maps;
/// let road = Road::new([20.0, 50.0, 80.0]).evaluate(&probe, x, &targets, &maps)?;
/// assert_eq!(road.most_relevant_first.dims(), [1, 1, 3]);
/// assert_eq!(road.combined().dims(), [1, 1]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct Road {
    /// The percentiles `p` (default 10, 20, …, 90: `ROADCombined`'s).
    pub percentiles: Vec<f64>,
    /// The standard deviation of the noise added to imputed pixels
    /// (default 0.01).
    pub noise: f64,
    /// The noise's seed; each imputed copy draws from its own stream, so
    /// the noise does not depend on `rows_per_pass`.
    pub seed: u64,
    /// Imputed copies per forward pass (default
    /// [`ROWS_PER_PASS`](crate::metrics::ROWS_PER_PASS)).
    pub rows_per_pass: Option<usize>,
}

impl Default for Road {
    fn default() -> Self {
        Self::new((1..10).map(|p| f64::from(p) * 10.0).collect::<Vec<_>>())
    }
}

/// A [`Road`] result: score changes `s1 − s0`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RoadScores {
    /// The percentiles, axis 2 of the scores.
    pub percentiles: Vec<f64>,
    /// The score of the input `[B, N]`.
    pub before: Tensor<2>,
    /// MoRF: `s1 − s0` per percentile `[B, N, P]`.
    pub most_relevant_first: Tensor<3>,
    /// LeRF: `s1 − s0` per percentile `[B, N, P]`.
    pub least_relevant_first: Tensor<3>,
}

impl RoadScores {
    /// `(mean_p LeRF_p − mean_p MoRF_p) / 2` `[B, N]`: pytorch-grad-cam's
    /// `ROADCombined` (higher is better).
    #[must_use]
    pub fn combined(&self) -> Tensor<2> {
        let mean = |t: &Tensor<3>| t.clone().mean_dim(2).squeeze_dim::<2>(2);
        (mean(&self.least_relevant_first) - mean(&self.most_relevant_first)).div_scalar(2.0)
    }
}

impl Road {
    /// These percentiles, with pytorch-grad-cam's noise (0.01, seed 0).
    pub fn new(percentiles: impl Into<Vec<f64>>) -> Self {
        Self {
            percentiles: percentiles.into(),
            noise: 0.01,
            seed: 0,
            rows_per_pass: None,
        }
    }

    /// Sets the noise's standard deviation.
    pub fn with_noise(mut self, noise: f64) -> Self {
        self.noise = noise;
        self
    }

    /// Sets the noise's seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the imputed copies per forward pass.
    pub fn with_rows_per_pass(mut self, rows: usize) -> Self {
        self.rows_per_pass = Some(rows);
        self
    }

    /// MoRF and LeRF score changes for `maps` explaining `targets` on `input`.
    ///
    /// # Errors
    /// See the type's documentation.
    pub fn evaluate<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
        maps: &Tensor<D>,
    ) -> Result<RoadScores> {
        if D != 4 {
            return Err(Error::Rank {
                what: "ROAD input (images [B, C, H, W]: the imputation is two-dimensional)",
                expected: 4,
                shape: input.dims().to_vec(),
            });
        }
        if self.percentiles.is_empty()
            || self.percentiles.iter().any(|p| !(0.0..=100.0).contains(p))
        {
            return Err(Error::config(
                "percentiles",
                format!(
                    "need at least one, each in [0, 100]; got {:?}",
                    self.percentiles
                ),
            ));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(Error::config(
                "noise",
                format!("must be finite and ≥ 0, got {}", self.noise),
            ));
        }
        let per_pass = rows_per_pass(self.rows_per_pass)?;
        let clean = Clean::new(probe, input, targets, maps)?;
        let dims = clean.input.dims();
        let (batch, channels, h, w) = (dims[0], dims[1], dims[2], dims[3]);
        let units = clean.resolved.units;
        let pixels = h * w;
        let image = read_f32(clean.input.clone())?;
        let map_values = read_f32(maps.clone())?;
        let orders = [RoadOrder::MostRelevantFirst, RoadOrder::LeastRelevantFirst];
        let count = self.percentiles.len();
        // Rows (sample, column, order, percentile), in that nesting.
        let rows: Vec<(usize, usize, RoadOrder, f64)> = (0..batch)
            .flat_map(|b| {
                (0..units).flat_map(move |n| {
                    orders
                        .into_iter()
                        .flat_map(move |o| self.percentiles.iter().map(move |&p| (b, n, o, p)))
                })
            })
            .collect();
        let pairs: Vec<(usize, usize)> = rows.iter().map(|&(b, n, _, _)| (b, n)).collect();
        let device = clean.input.device();
        let size = channels * pixels;
        let scores = clean.perturbed_scores(probe, &pairs, per_pass, |start, len| {
            let mut out = vec![0f32; len * size];
            out.par_chunks_mut(size)
                .zip(&rows[start..start + len])
                .enumerate()
                .for_each(|(j, (dst, &(b, n, order, p)))| {
                    let map = &map_values[(b * units + n) * pixels..][..pixels];
                    let keep = road_keep(map, p, order);
                    let x = &image[b * size..][..size];
                    dst.copy_from_slice(&linear_impute(x, channels, [h, w], &keep));
                    if self.noise > 0.0 {
                        let row = (start + j) as u64;
                        let mut rng =
                            SplitMix64(self.seed ^ row.wrapping_mul(0xD1B5_4A32_D192_ED03));
                        let noise = rng.normals(size);
                        for (i, v) in dst.iter_mut().enumerate() {
                            if !keep[i % pixels] {
                                *v += (self.noise * f64::from(noise[i])) as f32;
                            }
                        }
                    }
                });
            Ok(Tensor::from_data(
                TensorData::new(out, [len, channels, pixels]),
                &device,
            ))
        })?;
        let before = read_f32(clean.scores.clone())?;
        let mut morf = Vec::with_capacity(batch * units * count);
        let mut lerf = Vec::with_capacity(batch * units * count);
        for (&(b, n, order, _), s1) in rows.iter().zip(scores) {
            let change = s1 - before[b * units + n];
            match order {
                RoadOrder::MostRelevantFirst => morf.push(change),
                RoadOrder::LeastRelevantFirst => lerf.push(change),
            }
        }
        let tensor =
            |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [batch, units, count]), &device);
        Ok(RoadScores {
            percentiles: self.percentiles.clone(),
            before: clean.scores,
            most_relevant_first: tensor(morf),
            least_relevant_first: tensor(lerf),
        })
    }
}

/// numpy's `percentile(values, p)` (method `linear`) with its `f32`
/// rounding: `v = (n − 1) · p / 100` and `g = v − ⌊v⌋` in `f64`, `a`, `b`
/// the sorted values at `⌊v⌋` and `⌊v⌋ + 1`, then in `f32`
/// `a + (b − a) · g` if `g < 0.5`, else `b − (b − a) · (1 − g)`.
///
/// # Panics
/// On an empty slice.
#[must_use]
pub fn percentile_threshold(values: &[f32], percentile: f64) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let v = (sorted.len() - 1) as f64 * (percentile / 100.0);
    let lo = v.floor() as usize;
    let g = v - v.floor();
    let a = sorted[lo];
    let b = sorted[(lo + 1).min(sorted.len() - 1)];
    let d = b - a;
    if g < 0.5 {
        a + d * g as f32
    } else {
        b - d * (1.0 - g) as f32
    }
}

/// The pixels ROAD keeps (`true`) at percentile `p`: MoRF keeps
/// `map < percentile_threshold(map, p)`, LeRF keeps `1 − map <
/// percentile_threshold(1 − map, p)` with `1 − map` in `f32`
/// (pytorch-grad-cam's `RemoveMostRelevantFirst` /
/// `RemoveLeastRelevantFirst`).
///
/// # Panics
/// On an empty map.
#[must_use]
pub fn road_keep(map: &[f32], percentile: f64, order: RoadOrder) -> Vec<bool> {
    let values: Vec<f32> = match order {
        RoadOrder::MostRelevantFirst => map.to_vec(),
        RoadOrder::LeastRelevantFirst => map.iter().map(|v| 1.0 - v).collect(),
    };
    let threshold = percentile_threshold(&values, percentile);
    values.iter().map(|&v| v < threshold).collect()
}

/// Neighbour offsets (row, column) and weights of the imputation.
const NEIGHBOURS: [(isize, isize, f64); 8] = [
    (-1, -1, 1.0 / 12.0),
    (-1, 0, 1.0 / 6.0),
    (-1, 1, 1.0 / 12.0),
    (0, -1, 1.0 / 6.0),
    (0, 1, 1.0 / 6.0),
    (1, -1, 1.0 / 12.0),
    (1, 0, 1.0 / 6.0),
    (1, 1, 1.0 / 12.0),
];

/// pytorch-grad-cam's `NoisyLinearImputer` without noise: each removed pixel
/// (`keep[i] == false`) becomes the weighted mean of its in-image
/// 8-neighbours (edge neighbours 1/6, diagonal 1/12), the kept ones fixed,
/// all channels with the same weights. Kept pixels are copied. With every
/// pixel removed the system is singular with a zero right-hand side, and
/// the result is all zeros, as SciPy's `spsolve` returns.
///
/// The system `(Σ_{j ∈ N(i)} w_ij) x_i − Σ_{j ∈ N(i) removed} w_ij x_j =
/// Σ_{j ∈ N(i) kept} w_ij v_j` is symmetric positive definite as soon as
/// one pixel is kept; it is solved in `f64` by Cholesky factorisation within
/// its envelope (unknowns in row-major order, so each row reaches back at
/// most `W + 1` unknowns).
///
/// # Shapes
/// - `image`: `[C, H, W]` row-major, `keep`: `[H, W]`; output `[C, H, W]`
///
/// # Panics
/// When `image` or `keep` do not hold `C · H · W` and `H · W` values.
#[must_use]
pub fn linear_impute(
    image: &[f32],
    channels: usize,
    [h, w]: [usize; 2],
    keep: &[bool],
) -> Vec<f32> {
    let pixels = h * w;
    assert_eq!(image.len(), channels * pixels, "image is not [C, H, W]");
    assert_eq!(keep.len(), pixels, "keep mask is not [H, W]");
    let mut out = image.to_vec();
    let unknown: Vec<usize> = (0..pixels).filter(|&p| !keep[p]).collect();
    let n = unknown.len();
    if n == 0 {
        return out;
    }
    if n == pixels {
        out.iter_mut().for_each(|v| *v = 0.0);
        return out;
    }
    let mut index = vec![usize::MAX; pixels];
    for (i, &p) in unknown.iter().enumerate() {
        index[p] = i;
    }
    let neighbours = |p: usize| {
        let (r, c) = ((p / w) as isize, (p % w) as isize);
        NEIGHBOURS.iter().filter_map(move |&(dr, dc, weight)| {
            let (rr, cc) = (r + dr, c + dc);
            (rr >= 0 && cc >= 0 && (rr as usize) < h && (cc as usize) < w)
                .then(|| (rr as usize * w + cc as usize, weight))
        })
    };
    // Envelope: row i of L starts at the first unknown it couples to.
    let first: Vec<usize> = unknown
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            neighbours(p)
                .filter_map(|(q, _)| (index[q] != usize::MAX).then_some(index[q]))
                .fold(i, usize::min)
        })
        .collect();
    let mut offset = Vec::with_capacity(n + 1);
    offset.push(0);
    for i in 0..n {
        offset.push(offset[i] + i - first[i] + 1);
    }
    // The matrix's lower envelope, then factorised in place.
    let mut l = vec![0f64; offset[n]];
    let mut rhs = vec![0f64; n * channels];
    for (i, &p) in unknown.iter().enumerate() {
        let mut diagonal = 0.0;
        for (q, weight) in neighbours(p) {
            diagonal += weight;
            let j = index[q];
            if j == usize::MAX {
                for c in 0..channels {
                    rhs[i * channels + c] += weight * f64::from(image[c * pixels + q]);
                }
            } else if j < i {
                l[offset[i] + j - first[i]] = -weight;
            }
        }
        l[offset[i] + i - first[i]] = diagonal;
    }
    for i in 0..n {
        for j in first[i]..=i {
            let k0 = first[i].max(first[j]);
            let row_i = &l[offset[i] + k0 - first[i]..offset[i] + j - first[i]];
            let row_j = &l[offset[j] + k0 - first[j]..offset[j] + j - first[j]];
            let dot: f64 = row_i.iter().zip(row_j).map(|(a, b)| a * b).sum();
            let s = l[offset[i] + j - first[i]] - dot;
            l[offset[i] + j - first[i]] = if j < i {
                s / l[offset[j + 1] - 1]
            } else {
                s.sqrt()
            };
        }
    }
    // L y = b, then Lᵀ x = y, every channel together.
    for i in 0..n {
        for c in 0..channels {
            let mut s = rhs[i * channels + c];
            for k in first[i]..i {
                s -= l[offset[i] + k - first[i]] * rhs[k * channels + c];
            }
            rhs[i * channels + c] = s / l[offset[i + 1] - 1];
        }
    }
    for i in (0..n).rev() {
        let d = l[offset[i + 1] - 1];
        for c in 0..channels {
            let x = rhs[i * channels + c] / d;
            rhs[i * channels + c] = x;
            for k in first[i]..i {
                rhs[k * channels + c] -= l[offset[i] + k - first[i]] * x;
            }
        }
    }
    for (i, &p) in unknown.iter().enumerate() {
        for c in 0..channels {
            out[c * pixels + p] = rhs[i * channels + c] as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 50) = 2.5; [0, 10] at 30 → 3.
        assert_eq!(percentile_threshold(&[4.0, 1.0, 3.0, 2.0], 50.0), 2.5);
        assert_eq!(percentile_threshold(&[0.0, 10.0], 30.0), 3.0);
        assert_eq!(percentile_threshold(&[5.0], 90.0), 5.0);
    }

    #[test]
    fn imputation_solves_the_mean_value_system() {
        // A single removed pixel in the middle of a 3×3 image is the
        // weighted mean of its 8 neighbours.
        let image: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut keep = vec![true; 9];
        keep[4] = false;
        let out = linear_impute(&image, 1, [3, 3], &keep);
        let expected = (1.0 + 3.0 + 5.0 + 7.0) / 6.0 + (0.0 + 2.0 + 6.0 + 8.0) / 12.0;
        assert!((out[4] - expected as f32).abs() < 1e-6);
        // Two neighbouring removed pixels: each the mean of its neighbours.
        keep[5] = false;
        let out = linear_impute(&image, 1, [3, 3], &keep);
        let mean = |p: usize| {
            let (r, c) = ((p / 3) as isize, (p % 3) as isize);
            let (mut sum, mut weights) = (0.0, 0.0);
            for &(dr, dc, wt) in &NEIGHBOURS {
                let (rr, cc) = (r + dr, c + dc);
                if (0..3).contains(&rr) && (0..3).contains(&cc) {
                    sum += wt * f64::from(out[(rr * 3 + cc) as usize]);
                    weights += wt;
                }
            }
            sum / weights
        };
        for p in [4, 5] {
            assert!((f64::from(out[p]) - mean(p)).abs() < 1e-6, "pixel {p}");
        }
        // Nothing kept: zeros, like spsolve on the singular system.
        assert!(
            linear_impute(&image, 1, [3, 3], &[false; 9])
                .iter()
                .all(|&v| v == 0.0)
        );
    }
}
