//! Integrated Gradients.

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor, ChannelReduction, explain_by_reduction};
use crate::error::Error;
use crate::explainable::Explainable;
use crate::filters::Filter;
use crate::methods::ROWS_PER_PASS;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_rest, numel};

/// The rule that turns the path integral of Integrated Gradients into a sum:
/// where the gradients are taken (`α_k`) and how they are weighted (the
/// step sizes), exactly as captum's `IntegratedGradients(method=…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Quadrature {
    /// `α = linspace(0, 1 − 1/n, n)`, steps `1/n`.
    RiemannLeft,
    /// `α = linspace(1/n, 1, n)`, steps `1/n`.
    RiemannRight,
    /// `α = linspace(1/(2n), 1 − 1/(2n), n)`, steps `1/n`.
    RiemannMiddle,
    /// `α = linspace(0, 1, n)`, steps `1/n` with the first and last halved.
    /// These are captum's steps: the points are `1/(n − 1)` apart but the
    /// steps sum to `(n − 1)/n`, so the sum is `(n − 1)/n` of a textbook
    /// trapezoid rule (captum's convergence delta carries that gap).
    RiemannTrapezoid,
    /// Gauss–Legendre nodes mapped to `[0, 1]`, `α = (1 + x_k)/2`, steps
    /// `w_k / 2` (captum's default; exact for polynomials of degree
    /// `2n − 1` along the path).
    #[default]
    GaussLegendre,
}

impl Quadrature {
    /// The points `α_k` and step sizes for `n` steps, in `f32` as captum
    /// uses them (its `linspace` is PyTorch's float32 one: `start + step·k`
    /// for the first half, `end − step·(n − 1 − k)` for the second).
    ///
    /// # Errors
    /// `n == 0`, or `n == 1` for the Riemann rules.
    pub fn points(self, n: usize) -> crate::Result<(Vec<f32>, Vec<f32>)> {
        let riemann = !matches!(self, Self::GaussLegendre);
        if n == 0 || (riemann && n == 1) {
            return Err(Error::config(
                "steps",
                format!(
                    "{self:?} needs at least {} steps, got {n}",
                    1 + usize::from(riemann)
                ),
            ));
        }
        let nf = n as f64;
        let mut steps = vec![(1.0 / nf) as f32; n];
        let alphas = match self {
            Self::RiemannLeft => linspace_f32(0.0, 1.0 - 1.0 / nf, n),
            Self::RiemannRight => linspace_f32(1.0 / nf, 1.0, n),
            Self::RiemannMiddle => linspace_f32(1.0 / (2.0 * nf), 1.0 - 1.0 / (2.0 * nf), n),
            Self::RiemannTrapezoid => {
                steps[0] = (0.5 / nf) as f32;
                steps[n - 1] = (0.5 / nf) as f32;
                linspace_f32(0.0, 1.0, n)
            }
            Self::GaussLegendre => {
                let (nodes, weights) = gauss_legendre(n);
                steps = weights.iter().map(|w| (0.5 * w) as f32).collect();
                nodes.iter().map(|x| (0.5 * (1.0 + x)) as f32).collect()
            }
        };
        Ok((alphas, steps))
    }
}

/// PyTorch's float32 `linspace(start, end, n)`.
fn linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    if n == 1 {
        return vec![start];
    }
    let step = f64::from((end - start) / (n - 1) as f32);
    let (start, end) = (f64::from(start), f64::from(end));
    let half = n / 2;
    // One rounding per value, as PyTorch's fused multiply-add gives (the
    // product of a float32 step and a small integer is exact in f64).
    (0..n)
        .map(|k| {
            if k < half {
                (start + step * k as f64) as f32
            } else {
                (end - step * (n - 1 - k) as f64) as f32
            }
        })
        .collect()
}

/// Gauss–Legendre nodes (ascending) and weights on `[−1, 1]`, by Newton's
/// method on the Legendre recurrence, in `f64`.
fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n {
        // Root i (descending) starts near its Chebyshev-like estimate.
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let kf = k as f64;
                let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
                p0 = p1;
                p1 = p2;
            }
            let (pn, pn1) = if n == 1 { (x, 1.0) } else { (p1, p0) };
            derivative = n as f64 * (x * pn - pn1) / (x * x - 1.0);
            let dx = pn / derivative;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        nodes[n - 1 - i] = x;
        weights[n - 1 - i] = 2.0 / ((1.0 - x * x) * derivative * derivative);
    }
    (nodes, weights)
}

/// The reference input Integrated Gradients starts its path from, and the
/// value Deletion and Insertion perturb towards.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Baseline {
    /// All zeros (captum's default).
    #[default]
    Zero,
    /// Every element the same value.
    Constant(f64),
    /// A tensor shaped like the input (one baseline per sample).
    Given(TensorData),
}

impl Baseline {
    /// The baseline as a tensor shaped like `input`, on its device; errors
    /// name `what`.
    ///
    /// # Errors
    /// A non-finite value, or a given baseline not shaped like the input.
    pub(crate) fn tensor_like<const D: usize>(
        &self,
        input: &Tensor<D>,
        what: &'static str,
    ) -> crate::Result<Tensor<D>> {
        let dims = input.dims();
        let device = input.device();
        match self {
            Baseline::Zero => Ok(Tensor::zeros(dims, &device)),
            Baseline::Constant(v) if v.is_finite() => Ok(Tensor::full(dims, *v, &device)),
            Baseline::Constant(v) => Err(Error::config(
                "baseline",
                format!("must be finite, got {v}"),
            )),
            Baseline::Given(data) => {
                if data.shape().to_vec() != dims {
                    return Err(Error::Shape {
                        what,
                        expected: dims.to_vec(),
                        actual: data.shape().to_vec(),
                    });
                }
                let t = Tensor::from_data(data.clone().convert::<f32>(), &device);
                crate::tensor_ops::check_finite(what, &t)?;
                Ok(t)
            }
        }
    }
}

/// Integrated Gradients: the input's difference from a baseline times the
/// score's gradient averaged along the straight path between them.
///
/// Sundararajan et al., *Axiomatic Attribution for Deep Networks*, ICML 2017.
///
/// With `x'` the baseline and `(α_k, δ_k)` the [`Quadrature`]'s points and
/// steps: `attribution[b, n] = (x − x') ⊙ Σ_k δ_k ∂s[b, n]/∂x (x' + α_k (x − x'))`
/// per input channel (captum's `IntegratedGradients`, step for step:
/// points formed in `f32` as `x' + α_k · (x − x')`), reduced over channels
/// by the sum by default. *Completeness*: the attributions sum to
/// `s(x) − s(x')` up to the quadrature error, which
/// [`attribute_with_delta`](Self::attribute_with_delta) returns.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]` (per channel from
///   [`attribute`](Attributor::attribute): `[B·N, C, ...spatial]`)
///
/// # Cost
/// One forward pass (which fixes top-k units on the input), then `steps`
/// gradient evaluations of every sample and unit, `steps_per_pass` steps
/// at a time: `⌈steps / steps_per_pass⌉` forward and backward passes of
/// `steps_per_pass · B · N` rows.
///
/// # Errors
/// Too few steps, `steps_per_pass == 0`, a given baseline not shaped like
/// the input or not finite, and the input and target errors of every
/// method. Needs no tap.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, IntegratedGradients, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let ig = IntegratedGradients::new().with_steps(8);
/// let (a, delta) = ig.attribute_with_delta(&Probe::new(&model), x, &Targets::top_k(2))?;
/// assert_eq!(a.values.dims(), [2, 3, 8, 8]); // [B·N, C, H, W]
/// assert_eq!(delta.dims(), [1, 2]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct IntegratedGradients {
    /// Gradient evaluations along the path (default 50, captum's).
    pub steps: usize,
    /// The quadrature rule (default Gauss–Legendre, captum's).
    pub quadrature: Quadrature,
    /// Where the path starts (default zeros).
    pub baseline: Baseline,
    /// Path points per forward/backward pass; `None` (the default) keeps a
    /// pass within [`ROWS_PER_PASS`] rows (samples × units × points).
    pub steps_per_pass: Option<usize>,
    /// How the channels become one map (default the sum).
    pub reduction: ChannelReduction,
}

impl Default for IntegratedGradients {
    fn default() -> Self {
        Self::new()
    }
}

impl IntegratedGradients {
    /// captum's defaults: 50 Gauss–Legendre steps from a zero baseline.
    pub fn new() -> Self {
        Self {
            steps: 50,
            quadrature: Quadrature::GaussLegendre,
            baseline: Baseline::Zero,
            steps_per_pass: None,
            reduction: ChannelReduction::Sum,
        }
    }

    /// Sets the number of steps.
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// Sets the quadrature rule.
    pub fn with_quadrature(mut self, quadrature: Quadrature) -> Self {
        self.quadrature = quadrature;
        self
    }

    /// Sets the baseline.
    pub fn with_baseline(mut self, baseline: Baseline) -> Self {
        self.baseline = baseline;
        self
    }

    /// Sets the path points per pass.
    pub fn with_steps_per_pass(mut self, steps_per_pass: usize) -> Self {
        self.steps_per_pass = Some(steps_per_pass);
        self
    }

    /// Sets the channel reduction.
    pub fn with_reduction(mut self, reduction: ChannelReduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The attributions and the convergence delta `[B, N]`:
    /// `Σ attribution[b, n] − (s(x)[b, n] − s(x')[b, n])` (captum's
    /// `return_convergence_delta=True`), at the cost of one more forward
    /// pass, of the baseline.
    ///
    /// # Errors
    /// As [`attribute`](Attributor::attribute).
    pub fn attribute_with_delta<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<(Attribution<D>, Tensor<2>)> {
        let baseline = self
            .baseline
            .tensor_like(&input, "Integrated Gradients baseline")?;
        let (attribution, fixed) = self.integrate(probe, input, baseline.clone(), targets)?;
        let output = probe.forward(baseline)?;
        let at_baseline = fixed.resolve(&output)?.sample_scores(&output)?;
        let [b, n] = attribution.scores.dims();
        let total = flatten_rest(attribution.values.clone())
            .sum_dim(1)
            .reshape([b, n]);
        let delta = total - (attribution.scores.clone() - at_baseline);
        Ok((attribution, delta))
    }

    /// The attributions, and the targets with their units fixed on the input.
    fn integrate<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        baseline: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<(Attribution<D>, Targets)> {
        let (alphas, steps) = self.quadrature.points(self.steps)?;
        if self.steps_per_pass == Some(0) {
            return Err(Error::config("steps_per_pass", "must be at least 1"));
        }
        let output = probe.forward(input.clone())?;
        let input = input.detach().without_autodiff();
        let resolved = targets.resolve(&output)?;
        let device = input.device();
        let indices = resolved.tensor(&device);
        let scores = resolved.sample_scores(&output)?;
        let fixed = targets.fixed(&indices)?;
        let dims = input.dims();
        let (batch, units) = (resolved.batch, resolved.units);
        let features = numel(&dims[1..]);
        let diff = flatten_rest(input - baseline.clone()); // [B, F]
        let base = flatten_rest(baseline).unsqueeze_dim::<3>(0);
        let per_pass = self
            .steps_per_pass
            .unwrap_or((ROWS_PER_PASS / (batch * units)).max(1));
        let column = |values: &[f32]| {
            Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), &device)
        };
        let mut total: Option<Tensor<2>> = None; // [B·N, F]
        for start in (0..alphas.len()).step_by(per_pass) {
            let len = per_pass.min(alphas.len() - start);
            // Points `x' + α_k (x − x')`, copy-major: row `j·B + b`.
            let alpha = column(&alphas[start..start + len]).reshape([len, 1, 1]);
            let points = alpha * diff.clone().unsqueeze_dim::<3>(0) + base.clone();
            let mut shape = dims;
            shape[0] = len * batch;
            let g = probe
                .input_gradients(points.reshape(shape), &fixed.tile(len), units, false)
                .map_err(|e| Error::Pass {
                    pass: format!("integrated gradients steps {}..{}", start, start + len),
                    source: Box::new(e),
                })?;
            // Rows `(j·B + b)·N + n`: weight each step, sum the steps.
            let step = column(&steps[start..start + len]).reshape([len, 1]);
            let weighted = (g.gradients.reshape([len, batch * units * features]) * step)
                .sum_dim(0)
                .reshape([batch * units, features]);
            total = Some(match total {
                Some(t) => t + weighted,
                None => weighted,
            });
        }
        let total = total.expect("at least one step");
        let values = total.reshape([batch, units, features]) * diff.unsqueeze_dim::<3>(1);
        let mut shape = dims;
        shape[0] = batch * units;
        Ok((
            Attribution::new(scores, indices, values.reshape(shape)),
            fixed,
        ))
    }
}

impl<M: Explainable<D>, const D: usize> Attributor<M, D> for IntegratedGradients {
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Attribution<D>> {
        let baseline = self
            .baseline
            .tensor_like(&input, "Integrated Gradients baseline")?;
        Ok(self.integrate(probe, input, baseline, targets)?.0)
    }
}

explain_by_reduction!(
    IntegratedGradients,
    Filter::AbsoluteNormalize,
    "Absolute values min-max normalised, at the input's resolution."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        // n nodes integrate degree 2n − 1 exactly: ∫₀¹ t^k dt = 1/(k + 1).
        for n in [1, 2, 5, 16] {
            let (nodes, weights) = gauss_legendre(n);
            for k in 0..2 * n {
                let sum: f64 = nodes
                    .iter()
                    .zip(&weights)
                    .map(|(x, w)| 0.5 * w * (0.5 * (1.0 + x)).powi(k as i32))
                    .sum();
                assert!(
                    (sum - 1.0 / (k as f64 + 1.0)).abs() < 1e-13,
                    "n={n} k={k}: {sum}"
                );
            }
            assert!(nodes.windows(2).all(|w| w[0] < w[1]), "ascending");
        }
    }

    #[test]
    fn riemann_rules_follow_captum() {
        let (a, s) = Quadrature::RiemannTrapezoid.points(4).unwrap();
        assert_eq!(a[0], 0.0);
        assert_eq!(a[3], 1.0);
        assert_eq!(s, vec![0.125, 0.25, 0.25, 0.125]);
        let (a, _) = Quadrature::RiemannLeft.points(4).unwrap();
        assert_eq!(a, vec![0.0, 0.25, 0.5, 0.75]);
        let (a, _) = Quadrature::RiemannRight.points(4).unwrap();
        assert_eq!(a, vec![0.25, 0.5, 0.75, 1.0]);
        let (a, _) = Quadrature::RiemannMiddle.points(4).unwrap();
        assert_eq!(a, vec![0.125, 0.375, 0.625, 0.875]);
        assert!(Quadrature::RiemannMiddle.points(1).is_err());
        assert!(Quadrature::GaussLegendre.points(0).is_err());
    }
}
