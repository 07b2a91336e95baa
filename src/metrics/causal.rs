//! Deletion and Insertion (causal fidelity).

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::Explainable;
use crate::methods::Baseline;
use crate::metrics::{Clean, gather_rows, rows_per_pass};
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_rest, numel, read_f32};

/// Which way a [`CausalFidelity`] curve goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causal {
    /// From the input towards the baseline, most relevant pixels first: a
    /// good map makes the score fall fast (low area under the curve).
    Deletion,
    /// From the baseline towards the input, most relevant pixels first: a
    /// good map makes the score rise fast (high area under the curve).
    Insertion,
}

/// Deletion and Insertion: the score as the most relevant pixels are
/// removed from the input (or added to a baseline) step by step, and the
/// area under that curve.
///
/// Petsiuk et al., *RISE: Randomized Input Sampling for Explanation of
/// Black-box Models*, BMVC 2018; conventions of Xplique 2.0's `Deletion` and
/// `Insertion` (`CausalFidelity`).
///
/// Pixels (spatial positions; every channel of a pixel moves together) are
/// ordered by the map, most relevant first; ties go to the larger flat
/// (row-major) index first — the reverse of a stable ascending sort, the
/// deterministic reading of Xplique's `argsort(…)[::-1]`. With `P` pixels,
/// `M = ⌊P · max_fraction⌋` and `S = steps`, step `k` perturbs the first
/// `c_k = ⌊k · (M / S)⌋` pixels (`c_S = M`; [`causal_counts`]): deletion
/// sets them to the baseline in the input, insertion copies them from the
/// input into the baseline. The curve is the score after each step,
/// `S + 1` points (deletion starts at the input's score, insertion ends at
/// it when `max_fraction` is 1), and
/// `AUC = Σ_k (s_k + s_{k+1}) / (2S)`: trapezoids of width `1/S` whatever
/// the steps' sizes (Xplique's rule). Xplique reports the AUC of the batch's
/// mean curve, which is the mean of these per-sample AUCs.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`
/// - [`Curves::scores`]: `[B, N, S + 1]`; [`Curves::auc`]: `[B, N]`
///
/// # Cost
/// One forward pass of the input, then `S` perturbed copies of every sample
/// and unit (the step that equals the input reuses its score), in passes of
/// `rows_per_pass` rows. Ordering the pixels is a host sort per map.
///
/// # Errors
/// `steps == 0`, `max_fraction` outside `(0, 1]`, `rows_per_pass == 0`, a
/// baseline not shaped like the input or not finite, maps not shaped
/// `[B, N, ...spatial]` or not finite, and the input and target errors of
/// every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::metrics::CausalFidelity;
/// use burn_explainable::{Explainer, GradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &device);
/// let targets = Targets::top_k(1).softmax();
/// let maps = GradCam::new().explain(&probe, x.clone(), &targets)?.maps;
/// let deletion = CausalFidelity::deletion().with_steps(4).evaluate(&probe, x, &targets, &maps)?;
/// assert_eq!(deletion.scores.dims(), [2, 1, 5]);
/// assert_eq!(deletion.counts, [0, 16, 32, 48, 64]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct CausalFidelity {
    /// Deletion or insertion.
    pub mode: Causal,
    /// Steps `S` (default 10, Xplique's).
    pub steps: usize,
    /// What removed pixels become (deletion) or the image pixels are added
    /// to (insertion); default zeros, Xplique's `baseline_mode = 0.0`.
    pub baseline: Baseline,
    /// The fraction of the pixels perturbed by the last step (default 1).
    pub max_fraction: f64,
    /// Perturbed copies per forward pass (default
    /// [`ROWS_PER_PASS`](crate::metrics::ROWS_PER_PASS)).
    pub rows_per_pass: Option<usize>,
}

/// A [`CausalFidelity`] result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Curves {
    /// Pixels perturbed after each step, `S + 1` values from 0.
    pub counts: Vec<usize>,
    /// The score after each step `[B, N, S + 1]`.
    pub scores: Tensor<3>,
    /// The area under each curve `[B, N]`.
    pub auc: Tensor<2>,
}

impl CausalFidelity {
    /// The given way, with Xplique's defaults.
    pub fn new(mode: Causal) -> Self {
        Self {
            mode,
            steps: 10,
            baseline: Baseline::Zero,
            max_fraction: 1.0,
            rows_per_pass: None,
        }
    }

    /// Deletion, with Xplique's defaults.
    pub fn deletion() -> Self {
        Self::new(Causal::Deletion)
    }

    /// Insertion, with Xplique's defaults.
    pub fn insertion() -> Self {
        Self::new(Causal::Insertion)
    }

    /// Sets the number of steps.
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Sets the baseline.
    pub fn with_baseline(mut self, baseline: Baseline) -> Self {
        self.baseline = baseline;
        self
    }

    /// Sets the fraction of pixels the last step perturbs.
    pub fn with_max_fraction(mut self, max_fraction: f64) -> Self {
        self.max_fraction = max_fraction;
        self
    }

    /// Sets the perturbed copies per forward pass.
    pub fn with_rows_per_pass(mut self, rows: usize) -> Self {
        self.rows_per_pass = Some(rows);
        self
    }

    /// The curves and their areas for `maps` explaining `targets` on `input`.
    ///
    /// # Errors
    /// See the type's documentation.
    pub fn evaluate<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
        maps: &Tensor<D>,
    ) -> Result<Curves> {
        if self.steps == 0 {
            return Err(Error::config("steps", "must be at least 1"));
        }
        if !(self.max_fraction > 0.0 && self.max_fraction <= 1.0) {
            return Err(Error::config(
                "max_fraction",
                format!("must be in (0, 1], got {}", self.max_fraction),
            ));
        }
        let per_pass = rows_per_pass(self.rows_per_pass)?;
        let clean = Clean::new(probe, input, targets, maps)?;
        let dims = clean.input.dims();
        let (batch, units) = (clean.resolved.batch, clean.resolved.units);
        let pixels = numel(&dims[2..]);
        let counts = causal_counts(pixels, self.steps, self.max_fraction);
        let baseline = self.baseline.tensor_like(&clean.input, "causal baseline")?;
        let map_values = read_f32(maps.clone())?;
        // The rank of each pixel in each map's order.
        let ranks: Vec<usize> = map_values
            .chunks_exact(pixels)
            .flat_map(|map| {
                let mut rank = vec![0; pixels];
                for (r, p) in causal_order(map).into_iter().enumerate() {
                    rank[p] = r;
                }
                rank
            })
            .collect();
        let unperturbed = |count: usize| match self.mode {
            Causal::Deletion => count == 0,
            Causal::Insertion => count == pixels,
        };
        // Rows to score: (sample, column, step) of every step that is not the input.
        let points = counts.len();
        let rows: Vec<(usize, usize, usize)> = (0..batch)
            .flat_map(|b| (0..units).flat_map(move |n| (0..points).map(move |k| (b, n, k))))
            .filter(|&(_, _, k)| !unperturbed(counts[k]))
            .collect();
        let pairs: Vec<(usize, usize)> = rows.iter().map(|&(b, n, _)| (b, n)).collect();
        let device = clean.input.device();
        let channels = dims[1];
        let (start_from, end_at) = match self.mode {
            Causal::Deletion => (clean.input.clone(), baseline),
            Causal::Insertion => (baseline, clean.input.clone()),
        };
        let start_from = flatten_rest(start_from).reshape([batch, channels, pixels]);
        let end_at = flatten_rest(end_at).reshape([batch, channels, pixels]);
        let perturbed = clean.perturbed_scores(probe, &pairs, per_pass, |start, len| {
            let chunk = &rows[start..start + len];
            let mut mask = vec![0f32; len * pixels];
            for (m, &(b, n, k)) in mask.chunks_exact_mut(pixels).zip(chunk) {
                let rank = &ranks[(b * units + n) * pixels..][..pixels];
                for (v, &r) in m.iter_mut().zip(rank) {
                    *v = f32::from(u8::from(r < counts[k]));
                }
            }
            let mask = Tensor::<3>::from_data(TensorData::new(mask, [len, 1, pixels]), &device);
            let samples: Vec<usize> = chunk.iter().map(|r| r.0).collect();
            let from = gather_rows(&start_from, &samples);
            let to = gather_rows(&end_at, &samples);
            Ok(from.clone() + (to - from) * mask)
        })?;
        let clean_scores = read_f32(clean.scores)?;
        let mut curves = vec![0f32; batch * units * points];
        let mut next = perturbed.into_iter();
        for b in 0..batch {
            for n in 0..units {
                for (k, &count) in counts.iter().enumerate() {
                    curves[(b * units + n) * points + k] = if unperturbed(count) {
                        clean_scores[b * units + n]
                    } else {
                        next.next().expect("one score per perturbed row")
                    };
                }
            }
        }
        let auc: Vec<f32> = curves
            .chunks_exact(points)
            .map(|s| {
                let sum: f64 = s
                    .windows(2)
                    .map(|w| f64::from(w[0]) + f64::from(w[1]))
                    .sum();
                (sum * 0.5 / self.steps as f64) as f32
            })
            .collect();
        Ok(Curves {
            counts,
            scores: Tensor::from_data(TensorData::new(curves, [batch, units, points]), &device),
            auc: Tensor::from_data(TensorData::new(auc, [batch, units]), &device),
        })
    }
}

/// Pixels perturbed after each of `steps` steps out of `pixels`:
/// `c_k = ⌊k · (M / steps)⌋` with `M = ⌊pixels · max_fraction⌋`, and
/// `c_steps = M` (numpy's `linspace(0, M, steps + 1, dtype=int32)`).
#[must_use]
pub fn causal_counts(pixels: usize, steps: usize, max_fraction: f64) -> Vec<usize> {
    let total = (pixels as f64 * max_fraction).floor() as usize;
    let step = total as f64 / steps as f64;
    (0..=steps)
        .map(|k| {
            if k == steps {
                total
            } else {
                (k as f64 * step).floor() as usize
            }
        })
        .collect()
}

/// The pixels of a map, most relevant first; ties go to the larger index
/// first (the reverse of a stable ascending sort).
#[must_use]
pub fn causal_order(map: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..map.len()).collect();
    order.sort_unstable_by(|&a, &b| map[b].total_cmp(&map[a]).then(b.cmp(&a)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_numpy_linspace() {
        // 96 × 128 pixels, 10 steps (Xplique's example in the fixtures).
        assert_eq!(
            causal_counts(12288, 10, 1.0),
            [
                0, 1228, 2457, 3686, 4915, 6144, 7372, 8601, 9830, 11059, 12288
            ]
        );
        assert_eq!(causal_counts(10, 4, 0.5), [0, 1, 2, 3, 5]);
    }

    #[test]
    fn order_is_descending_with_ties_to_the_larger_index() {
        assert_eq!(causal_order(&[0.5, 1.0, 0.5, 0.0, 1.0]), [4, 1, 2, 0, 3]);
    }
}
