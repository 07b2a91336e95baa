//! Occlusion.

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor, ChannelReduction, explain_by_reduction};
use crate::error::Error;
use crate::explainable::Explainable;
use crate::filters::Filter;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_rest, numel};

/// Occlusion: how much each score drops when a sliding window of the input
/// is set to a baseline value, averaged over the windows covering each
/// element. No gradients.
///
/// Zeiler & Fergus, *Visualizing and Understanding Convolutional Networks*,
/// ECCV 2014.
///
/// Windows of shape `window` (one size per non-batch axis: channels, then
/// the spatial axes) start every `strides` along each axis,
/// `⌈(size − window) / stride⌉ + 1` positions per axis, the last ones
/// cropped at the border (captum's `Occlusion` with
/// `sliding_window_shapes = window`, `strides`, `baselines = baseline`).
/// For each window `w`, `d_w[b, n] = s[b, n](x) − s[b, n](x with w set to
/// the baseline)`, and `attribution[b, n, e] = Σ_{w ∋ e} d_w / #{w ∋ e}`
/// (0 for an element no window covers). Reduced over channels by the mean
/// by default (with windows spanning every channel, all channels are equal).
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]` (per channel from
///   [`attribute`](Attributor::attribute): `[B·N, C, ...spatial]`)
///
/// # Cost
/// One forward pass, then one per window and sample, `windows_per_pass`
/// windows of every sample per pass. No backward pass.
///
/// # Errors
/// A window or stride of the wrong length, zero, or a window larger than
/// the input; `windows_per_pass == 0`; a non-finite baseline; and the input
/// and target errors of every method. Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, Occlusion, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// // 3×4×4 windows every 2 pixels: 3 × 3 positions.
/// let occlusion = Occlusion::new([3, 4, 4], [3, 2, 2]);
/// let e = occlusion.explain(&Probe::new(&model), x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct Occlusion {
    /// The window's size along each non-batch axis (channels first).
    pub window: Vec<usize>,
    /// The step between windows along each non-batch axis.
    pub strides: Vec<usize>,
    /// The value occluded elements take (default 0).
    pub baseline: f64,
    /// Windows per forward pass; `None` (the default) keeps a pass within
    /// 32 rows (samples × windows).
    pub windows_per_pass: Option<usize>,
    /// How the channels become one map (default the mean).
    pub reduction: ChannelReduction,
}

impl Occlusion {
    /// Windows of shape `window` every `strides`, occluded with zeros.
    pub fn new(window: impl Into<Vec<usize>>, strides: impl Into<Vec<usize>>) -> Self {
        Self {
            window: window.into(),
            strides: strides.into(),
            baseline: 0.0,
            windows_per_pass: None,
            reduction: ChannelReduction::Mean,
        }
    }

    /// Sets the baseline value.
    pub fn with_baseline(mut self, baseline: f64) -> Self {
        self.baseline = baseline;
        self
    }

    /// Sets the windows per pass.
    pub fn with_windows_per_pass(mut self, windows_per_pass: usize) -> Self {
        self.windows_per_pass = Some(windows_per_pass);
        self
    }

    /// Sets the channel reduction.
    pub fn with_reduction(mut self, reduction: ChannelReduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The windows' positions per axis, checked against the input's
    /// non-batch shape.
    fn positions(&self, shape: &[usize]) -> crate::Result<Vec<usize>> {
        if self.window.len() != shape.len() || self.strides.len() != shape.len() {
            return Err(Error::Shape {
                what: "occlusion window and strides (one size per non-batch input axis)",
                expected: shape.to_vec(),
                actual: [self.window.clone(), self.strides.clone()].concat(),
            });
        }
        if self.windows_per_pass == Some(0) {
            return Err(Error::config("windows_per_pass", "must be at least 1"));
        }
        if !self.baseline.is_finite() {
            return Err(Error::config("baseline", "must be finite"));
        }
        shape
            .iter()
            .zip(self.window.iter().zip(&self.strides))
            .map(|(&size, (&w, &s))| {
                if w == 0 || s == 0 || w > size {
                    Err(Error::config(
                        "window",
                        format!(
                            "window {:?} with strides {:?} must be ≥ 1 and fit the input's {shape:?}",
                            self.window, self.strides
                        ),
                    ))
                } else {
                    Ok((size - w).div_ceil(s) + 1)
                }
            })
            .collect()
    }
}

/// Sets to 1 the box `lo..hi` of a row-major array of shape `dims`.
fn fill_box(out: &mut [f32], dims: &[usize], lo: &[usize], hi: &[usize]) {
    let mut at = lo.to_vec();
    loop {
        let flat = at.iter().zip(dims).fold(0, |f, (&i, &d)| f * d + i);
        out[flat] += 1.0;
        let mut axis = dims.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            at[axis] += 1;
            if at[axis] < hi[axis] {
                break;
            }
            at[axis] = lo[axis];
        }
    }
}

impl<M: Explainable<D>, const D: usize> Attributor<M, D> for Occlusion {
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Attribution<D>> {
        let dims = input.dims();
        let shape = &dims[1..];
        let positions = self.positions(shape)?;
        let output = probe.forward(input.clone())?;
        let input = input.detach().without_autodiff();
        let resolved = targets.resolve(&output)?;
        let scores = resolved.sample_scores(&output)?;
        let device = input.device();
        let (batch, units) = (resolved.batch, resolved.units);
        let features = numel(shape);
        let windows = numel(&positions);
        let bounds = |w: usize| {
            let mut rest = w;
            let mut lo = vec![0; shape.len()];
            let mut hi = vec![0; shape.len()];
            for axis in (0..shape.len()).rev() {
                let i = rest % positions[axis];
                rest /= positions[axis];
                lo[axis] = i * self.strides[axis];
                hi[axis] = (lo[axis] + self.window[axis]).min(shape[axis]);
            }
            (lo, hi)
        };
        let mut counts = vec![0.0f32; features];
        for w in 0..windows {
            let (lo, hi) = bounds(w);
            fill_box(&mut counts, shape, &lo, &hi);
        }
        let x = flatten_rest(input).unsqueeze_dim::<3>(0); // [1, B, F]
        let per_pass = self.windows_per_pass.unwrap_or((32 / batch).max(1));
        let mut sum: Option<Tensor<2>> = None; // [B·N, F]
        for start in (0..windows).step_by(per_pass) {
            let len = per_pass.min(windows - start);
            let mut masks = vec![0.0f32; len * features];
            for (j, mask) in masks.chunks_exact_mut(features).enumerate() {
                let (lo, hi) = bounds(start + j);
                fill_box(mask, shape, &lo, &hi);
            }
            let masks = Tensor::<2>::from_data(TensorData::new(masks, [len, features]), &device);
            let m = masks.clone().unsqueeze_dim::<3>(1); // [len, 1, F]
            let occluded =
                x.clone() * (m.clone().neg().add_scalar(1.0)) + m.mul_scalar(self.baseline);
            let mut rows_shape = dims;
            rows_shape[0] = len * batch;
            let out = probe.forward_unchecked(occluded.reshape(rows_shape), &dims)?;
            let rows: Vec<usize> = (0..len * batch).map(|r| r % batch).collect();
            // d[j·B + b, n] = s[b, n] − s_occluded → [B·N, len]
            let drop = (scores.clone().repeat_dim(0, len) - resolved.scores_all(&out, &rows)?)
                .reshape([len, batch * units])
                .transpose();
            let part = drop.matmul(masks);
            sum = Some(match sum {
                Some(s) => s + part,
                None => part,
            });
        }
        let counts = Tensor::<1>::from_data(TensorData::new(counts, [features]), &device);
        let covered = counts.clone().greater_elem(0.0).float();
        let values = sum.expect("at least one window")
            * (covered / counts.clamp_min(1.0)).unsqueeze_dim::<2>(0);
        let mut out_shape = dims;
        out_shape[0] = batch * units;
        Ok(Attribution::new(
            scores,
            resolved.tensor(&device),
            values.reshape(out_shape),
        ))
    }
}

explain_by_reduction!(
    Occlusion,
    Filter::AbsoluteNormalize,
    "Absolute values min-max normalised, at the input's resolution."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_and_positions() {
        // 1×5 input, windows of 1×2 every 2: starts 0, 2, 4 (the last cropped).
        let o = Occlusion::new([1, 2], [1, 2]);
        assert_eq!(o.positions(&[1, 5]).unwrap(), vec![1, 3]);
        let mut counts = vec![0.0; 5];
        fill_box(&mut counts, &[1, 5], &[0, 4], &[1, 5]);
        fill_box(&mut counts, &[1, 5], &[0, 0], &[1, 2]);
        assert_eq!(counts, vec![1.0, 1.0, 0.0, 0.0, 1.0]);
        assert!(Occlusion::new([1, 6], [1, 1]).positions(&[1, 5]).is_err());
        assert!(Occlusion::new([1, 2], [1]).positions(&[1, 5]).is_err());
    }
}
