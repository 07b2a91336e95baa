//! Guided Grad-CAM.

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor, ChannelReduction, explain_by_reduction};
use crate::explainable::Explainable;
use crate::explainer::Explainer;
use crate::filters::Filter;
use crate::methods::{GradCam, GuidedBackprop};
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_rest, numel};

/// Guided Grad-CAM: guided backpropagation's input attribution masked by
/// the ReLU of the Grad-CAM map at the tap, upsampled to the input by
/// nearest neighbour.
///
/// Selvaraju et al., *Grad-CAM: Visual Explanations from Deep Networks via
/// Gradient-based Localization*, ICCV 2017.
///
/// `attribution[b, n, c] = nearest(max(gradcam[b, n], 0)) ⊙ guided[b, n, c]`
/// with [`GradCam`] at the probe's tap, [`GuidedBackprop`] per input channel,
/// and `nearest` the upsampling that reads source index
/// `⌊dst · in / out⌋` along each axis (captum's `GuidedGradCam`, whose
/// `interpolate_mode` defaults to PyTorch's `'nearest'`). Reduced over
/// channels by the largest absolute value by default.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]` (per channel from
///   [`attribute`](Attributor::attribute): `[B·N, C, ...spatial]`)
///
/// # Cost
/// Grad-CAM's passes plus guided backpropagation's.
///
/// # Errors
/// Those of [`GradCam`] (no tap selected) and [`GuidedBackprop`] (no ReLU
/// points).
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Attributor, GuidedGradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let a = GuidedGradCam::new().attribute(&probe, x, &Targets::top_k(2))?;
/// assert_eq!(a.values.dims(), [2, 3, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct GuidedGradCam {
    /// Target units per guided backpropagation pass (see [`GuidedBackprop`]).
    pub units_per_pass: Option<usize>,
    /// How the channels become one map (default the largest absolute value).
    pub reduction: ChannelReduction,
}

impl Default for GuidedGradCam {
    fn default() -> Self {
        Self::new()
    }
}

impl GuidedGradCam {
    /// Channels reduced by the largest absolute value.
    pub fn new() -> Self {
        Self {
            units_per_pass: None,
            reduction: ChannelReduction::AbsMax,
        }
    }

    /// Sets the units per guided backpropagation pass.
    pub fn with_units_per_pass(mut self, units_per_pass: usize) -> Self {
        self.units_per_pass = Some(units_per_pass);
        self
    }

    /// Sets the channel reduction.
    pub fn with_reduction(mut self, reduction: ChannelReduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Nearest-neighbour resizing of `[A, B, ...spatial]` to `[A, B, ...size]`
/// reading source index `⌊dst · in / out⌋` on each axis (PyTorch's
/// `interpolate(mode='nearest')`), in exact integer arithmetic.
#[must_use]
pub fn resize_nearest<const D: usize>(t: Tensor<D>, size: &[usize]) -> Tensor<D> {
    let device = t.device();
    let mut t = t;
    for (axis, &out) in size.iter().enumerate() {
        let input = t.dims()[axis + 2];
        if input == out {
            continue;
        }
        let index: Vec<i64> = (0..out).map(|d| (d * input / out) as i64).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [out]), &device);
        t = t.select(axis + 2, index);
    }
    t
}

impl<M: Explainable<D>, const D: usize> Attributor<M, D> for GuidedGradCam {
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Attribution<D>> {
        probe.require_tap("Guided Grad-CAM")?;
        let dims = input.dims();
        let cam = GradCam::new().explain(probe, input.clone(), targets)?;
        let guided = GuidedBackprop {
            units_per_pass: self.units_per_pass,
            reduction: self.reduction,
        }
        .attribute(probe, input, &targets.fixed(&cam.indices)?)?;
        // [B, N, ...tap] → [B·N, 1, ...spatial], broadcast over channels.
        let mask = resize_nearest(cam.maps.clamp_min(0.0), &dims[2..]);
        let [b, n] = cam.scores.dims();
        let mask = flatten_rest(mask).reshape([b * n, 1, numel(&dims[2..])]);
        let values = guided.values;
        let shape = values.dims();
        let values = (values.reshape([b * n, dims[1], numel(&dims[2..])]) * mask).reshape(shape);
        Ok(Attribution::new(cam.scores, cam.indices, values))
    }
}

explain_by_reduction!(
    GuidedGradCam,
    Filter::Normalize,
    "Min-max normalised, at the input's resolution."
);
