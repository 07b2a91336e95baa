//! FullGrad.

use burn::prelude::*;

use crate::attribution::ChannelReduction;
use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::{self, Filter};
use crate::methods::saliency::units_per_pass;
use crate::probe::Probe;
use crate::resize::resize;
use crate::targets::Targets;
use crate::tensor_ops::{cat_units, flatten_spatial, repeat_each, rows_to_maps, unflatten_spatial};

/// FullGrad: the input-gradient term plus every bias's gradient term.
///
/// Srinivas & Fleuret, *Full-Gradient Representation for Neural Network
/// Visualization*, NeurIPS 2019 (as keras-explainable computes it, with one
/// map per unit and each BatchNorm's own epsilon).
///
/// With `ψ` (default [`Filter::AbsoluteNormalize`]) applied per channel over
/// space and `mean_c` the channel mean:
/// `maps[b, n] = mean_c ψ(x ⊙ ∂s/∂x) + Σ_l resize(mean_c ψ(b_l ⊙ ∂s/∂z_l))`,
/// where `z_l` are the bias points the model reports through
/// [`Trace::bias`](crate::Trace::bias) and `b_l` their effective biases.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`, at the input's resolution
///
/// # Cost
/// As [`Saliency`](crate::Saliency): `⌈N / u⌉` forward and backward
/// passes of a batch of `B · min(N, u)`, `u` the units per pass; every bias
/// term comes from the same backward pass. The gradients at all bias points
/// are held at once (about as much memory as the forward activations, per
/// row), then reduced in a few passes over them each.
///
/// With the default ψ the size of a bias only matters through being zero:
/// `|b_c · g|` normalises per channel exactly as `|g|` does. The other
/// normalising ψ depend on its sign, the non-normalising ones on its size.
///
/// # Errors
/// A model that reports no bias points, explicit biases whose number or
/// sizes do not match the model's bias points, `units_per_pass == 0`, a
/// reduction other than [`Mean`](ChannelReduction::Mean) and
/// [`Sum`](ChannelReduction::Sum), and the input and target errors of every
/// method. Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, FullGrad, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model);
/// let x = Tensor::<4>::ones([2, 3, 8, 8], &device);
/// let e = FullGrad::new().explain(&probe, x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [2, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct FullGrad {
    /// ψ, applied to each term before its channel mean.
    pub psi: Filter,
    /// How each term's channels are combined after ψ.
    pub reduction: ChannelReduction,
    /// Biases replacing the ones the model reports, in forward order.
    pub biases: Option<Vec<Tensor<1>>>,
    /// Target units per forward/backward pass; `None` (the default) picks
    /// as many as keep a pass within
    /// [`ROWS_PER_PASS`](crate::methods::ROWS_PER_PASS) rows.
    pub units_per_pass: Option<usize>,
}

impl Default for FullGrad {
    fn default() -> Self {
        Self::new()
    }
}

impl FullGrad {
    /// ψ = absolute-normalise, the model's own biases, units per pass
    /// chosen from the batch size.
    pub fn new() -> Self {
        Self {
            psi: Filter::AbsoluteNormalize,
            reduction: ChannelReduction::Mean,
            biases: None,
            units_per_pass: None,
        }
    }

    /// pytorch-grad-cam's `FullGrad`: ψ = [`Filter::AbsoluteScale`]
    /// (`|v|`, then `(v − min) / (1e-7 + range)` per channel), channels
    /// summed instead of averaged, and its post-processing (normalised
    /// twice with the same epsilon, as its `scale_cam_image` then
    /// `aggregate_multi_layers` do). Its layer list is every Conv2d and
    /// BatchNorm2d with a bias: report those as bias points.
    pub fn pytorch_grad_cam() -> Self {
        Self {
            psi: Filter::AbsoluteScale,
            reduction: ChannelReduction::Sum,
            ..Self::new()
        }
    }

    /// Sets how channels are combined.
    pub fn with_reduction(mut self, reduction: ChannelReduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets ψ.
    pub fn with_psi(mut self, psi: Filter) -> Self {
        self.psi = psi;
        self
    }

    /// Uses these biases, one per bias point in forward order, instead of
    /// the ones the model reports.
    pub fn with_biases(mut self, biases: Vec<Tensor<1>>) -> Self {
        self.biases = Some(biases);
        self
    }

    /// Sets the units per pass.
    pub fn with_units_per_pass(mut self, units_per_pass: usize) -> Self {
        self.units_per_pass = Some(units_per_pass);
        self
    }
}

/// How a normalising ψ divides: by the range, or by `1e-7 +` the range.
#[derive(Clone, Copy, PartialEq)]
enum Norm {
    None,
    Range,
    RangeEps,
}

/// ψ as a pointwise part followed by the per-slice min-max normalisation
/// it uses, if any.
fn split_psi(psi: Filter) -> (fn(Tensor<3>) -> Tensor<3>, Norm) {
    match psi {
        Filter::Normalize => (|t| t, Norm::Range),
        Filter::Positive => (filters::positive, Norm::None),
        Filter::Negative => (filters::negative, Norm::None),
        Filter::Absolute => (|t| t.abs(), Norm::None),
        Filter::PositiveNormalize => (filters::positive, Norm::Range),
        Filter::AbsoluteNormalize => (|t| t.abs(), Norm::Range),
        Filter::NegativeNormalize => (|t| filters::negative(t).abs(), Norm::Range),
        Filter::Scale => (|t| t, Norm::RangeEps),
        Filter::PositiveScale => (filters::positive, Norm::RangeEps),
        Filter::AbsoluteScale => (|t| t.abs(), Norm::RangeEps),
    }
}

/// `mean_c ψ(s_c · v_c)` for each row: `[R, C, ...spatial]` → `[R, 1, ...spatial]`,
/// with `scale` `[C]` (a bias) or none (all ones).
///
/// For the normalising filters this is a weighted channel sum
/// `Σ_c w_c (y_c − min y_c)` with `y = pre(s ⊙ v)` and `w_c = 1 / (C · range y_c)`
/// (0 for a constant channel, which normalises to zeros), one matrix
/// product instead of a normalised copy of every channel. Under `|·|` the
/// scale leaves the normalised channel unchanged unless it is 0
/// (`|s|·|v|` normalises as `|v|`), so it only enters the weights.
fn psi_channel_mean<const D: usize>(
    values: Tensor<D>,
    scale: Option<Tensor<1>>,
    psi: Filter,
    reduction: ChannelReduction,
) -> Tensor<D> {
    let dims = values.dims();
    let channels = dims[1];
    let flat = flatten_spatial(values);
    let (pre, norm) = split_psi(psi);
    let normalises = norm != Norm::None;
    // `full_grad_maps` admits only the linear reductions.
    let divisor = match reduction {
        ChannelReduction::Mean => channels as f32,
        _ => 1.0,
    };
    let as_column = |s: Tensor<1>| s.reshape([1, channels, 1]);
    let folds = psi == Filter::AbsoluteNormalize;
    let (y, folded) = match scale {
        Some(s) if folds => (pre(flat), Some(as_column(s).abs())),
        Some(s) => (pre(flat * as_column(s)), None),
        None => (pre(flat), None),
    };
    let map = if norm == Norm::RangeEps {
        // `(y − min) / (ε + range)`: a constant channel is zeros already.
        let min = y.clone().min_dim(2);
        let range = y.clone().max_dim(2) - min.clone();
        let weights = range
            .add_scalar(filters::SCALE_EPSILON)
            .recip()
            .div_scalar(divisor);
        weights.swap_dims(1, 2).matmul(y - min)
    } else if normalises {
        let min = y.clone().min_dim(2);
        let range = y.clone().max_dim(2) - min.clone();
        // The range of the scaled channel, as an unfolded ψ would see it.
        let constant = match folded {
            Some(s) => (range.clone() * s).equal_elem(0.0),
            None => range.clone().equal_elem(0.0),
        };
        let weights = range
            .mask_fill(constant.clone(), 1.0)
            .recip()
            .mask_fill(constant, 0.0)
            .div_scalar(divisor);
        weights.swap_dims(1, 2).matmul(y - min)
    } else {
        y.sum_dim(1).div_scalar(divisor)
    };
    unflatten_spatial(map, &dims[2..])
}

/// FullGrad maps from the gradients: one map per row.
///
/// Bias terms with the same spatial size are summed before they are
/// resized (resizing is linear), so a network with many layers at a few
/// resolutions costs a few resizes.
///
/// # Shapes
/// - `input`, `input_gradients`: `[R, C, ...spatial]`
/// - `biases`: pairs of a bias `[K_l]` and the gradient at its point `[R, K_l, ...spatial_l]`
/// - output: `[R, 1, ...spatial]`
///
/// # Errors
/// A bias whose length is not its gradient's channel count, a gradient
/// whose rows are not the input's, or a reduction other than `Mean` and
/// `Sum`.
pub fn full_grad_maps<const D: usize>(
    input: Tensor<D>,
    input_gradients: Tensor<D>,
    biases: Vec<(Tensor<1>, Tensor<D>)>,
    psi: Filter,
    reduction: ChannelReduction,
) -> crate::Result<Tensor<D>> {
    if !matches!(reduction, ChannelReduction::Mean | ChannelReduction::Sum) {
        return Err(Error::config(
            "reduction",
            format!("FullGrad averages or sums channels (Mean, Sum), got {reduction:?}"),
        ));
    }
    let rows = input.dims()[0];
    let size = input.dims()[2..].to_vec();
    let mut maps = psi_channel_mean(input * input_gradients, None, psi, reduction);
    let mut by_size: Vec<(Vec<usize>, Tensor<D>)> = Vec::new();
    for (bias, gradient) in biases {
        let dims = gradient.dims();
        let k = bias.dims()[0];
        if k != dims[1] || dims[0] != rows {
            return Err(Error::Shape {
                what: "bias point gradient [rows, bias length, ...]",
                expected: [&[rows, k][..], &dims[2..]].concat(),
                actual: dims.to_vec(),
            });
        }
        let term = psi_channel_mean(gradient, Some(bias), psi, reduction);
        match by_size.iter_mut().find(|(s, _)| s[..] == dims[2..]) {
            Some((_, sum)) => *sum = sum.clone() + term,
            None => by_size.push((dims[2..].to_vec(), term)),
        }
    }
    for (_, sum) in by_size {
        maps = maps + resize(sum, &size)?;
    }
    Ok(maps)
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for FullGrad {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let batch = input.dims()[0];
        let per_pass = units_per_pass(self.units_per_pass, batch);
        let plain = input.clone().detach().without_autodiff();
        // Each pass's bias gradients (as much memory as the activations)
        // become maps before the next pass runs.
        let (scores, indices, maps) = probe.input_gradient_passes(
            input,
            targets,
            per_pass,
            true,
            |units, g, mut points| {
                if let Some(explicit) = &self.biases {
                    if explicit.len() != points.len() {
                        return Err(Error::Shape {
                            what: "explicit FullGrad biases (one per bias point)",
                            expected: vec![points.len()],
                            actual: vec![explicit.len()],
                        });
                    }
                    for (point, bias) in points.iter_mut().zip(explicit) {
                        point.0 = bias.clone().without_autodiff();
                    }
                }
                let input = repeat_each(plain.clone(), units);
                full_grad_maps(input, g, points, self.psi, self.reduction)
            },
        )?;
        Ok(Explanation {
            scores,
            indices,
            maps: rows_to_maps(cat_units(maps, batch), batch),
        })
    }

    /// Min-max normalised, already at the input's resolution.
    fn postprocessing(&self) -> Postprocessing {
        if self.reduction == ChannelReduction::Sum && self.psi == Filter::AbsoluteScale {
            // pytorch-grad-cam's: `scale_cam_image`, then again in
            // `aggregate_multi_layers`.
            return Postprocessing::new(Some(Filter::Scale), false).then(Some(Filter::Scale));
        }
        Postprocessing::new(Some(Filter::Normalize), false)
    }
}
