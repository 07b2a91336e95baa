//! FullGrad.

use burn::prelude::*;

use crate::error::Error;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::probe::{Explainable, Probe};
use crate::resize::resize;
use crate::targets::Targets;
use crate::tensor_ops::{repeat_each, rows_to_maps, shape_with};

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
/// As [`Gradients`](crate::Gradients): `⌈N / units_per_pass⌉` forward and
/// backward passes of a batch of `B · min(N, units_per_pass)`; every bias
/// term comes from the same backward pass.
///
/// # Errors
/// A model that reports no bias points, explicit biases whose number or
/// sizes do not match the model's bias points, `units_per_pass == 0`, and the
/// input and target errors of every method. Needs no tap.
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
pub struct FullGrad {
    /// ψ, applied to each term before its channel mean.
    pub psi: Filter,
    /// Biases replacing the ones the model reports, in forward order.
    pub biases: Option<Vec<Tensor<1>>>,
    /// Target units per forward/backward pass (default 16).
    pub units_per_pass: usize,
}

impl Default for FullGrad {
    fn default() -> Self {
        Self::new()
    }
}

impl FullGrad {
    /// ψ = absolute-normalise, the model's own biases, 16 units per pass.
    pub fn new() -> Self {
        Self {
            psi: Filter::AbsoluteNormalize,
            biases: None,
            units_per_pass: 16,
        }
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
        self.units_per_pass = units_per_pass;
        self
    }
}

/// `resize(mean_c ψ(v ⊙ g))`: `[R, C, ...]` → `[R, 1, ...size]`.
fn term<const D: usize>(
    product: Tensor<D>,
    psi: Filter,
    size: &[usize],
) -> crate::Result<Tensor<D>> {
    resize(psi.apply(product).mean_dim(1), size)
}

/// FullGrad maps from the gradients: one map per row.
///
/// # Shapes
/// - `input`, `input_gradients`: `[R, C, ...spatial]`
/// - `biases`: pairs of a bias `[K_l]` and the gradient at its point `[R, K_l, ...spatial_l]`
/// - output: `[R, 1, ...spatial]`
///
/// # Errors
/// A bias whose length is not its gradient's channel count.
pub fn full_grad_maps<const D: usize>(
    input: Tensor<D>,
    input_gradients: Tensor<D>,
    biases: &[(Tensor<1>, Tensor<D>)],
    psi: Filter,
) -> crate::Result<Tensor<D>> {
    let size = input.dims()[2..].to_vec();
    let mut maps = term(input * input_gradients, psi, &size)?;
    for (bias, gradient) in biases {
        let dims = gradient.dims();
        let k = bias.dims()[0];
        if k != dims[1] {
            return Err(Error::Shape {
                what: "bias length vs channels at its bias point",
                expected: vec![dims[1]],
                actual: vec![k],
            });
        }
        let bias: Tensor<D> = bias.clone().reshape(shape_with::<D>(1, k, &vec![1; D - 2]));
        maps = maps + term(gradient.clone() * bias, psi, &size)?;
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
        let g = probe.input_gradients(input.clone(), targets, self.units_per_pass, true)?;
        let [batch, n] = g.scores.dims();
        let mut points = g.biases;
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
        let input = repeat_each(input.detach().without_autodiff(), n);
        let maps = full_grad_maps(input, g.gradients, &points, self.psi)?;
        Ok(Explanation {
            scores: g.scores,
            indices: g.indices,
            maps: rows_to_maps(maps, batch),
        })
    }

    /// Min-max normalised, already at the input's resolution.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing {
            filter: Some(Filter::Normalize),
            resize: false,
        }
    }
}
