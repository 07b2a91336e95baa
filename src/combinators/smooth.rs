//! SmoothGrad-style noise averaging around any explainer.

use burn::prelude::*;

use crate::attribution::{Attribution, Attributor};
use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::probe::Probe;
use crate::rng::SplitMix64;
use crate::targets::Targets;
use crate::tensor_ops::{check_not_empty, flatten_rest, numel};

/// The Gaussian noise [`Smooth`] adds to the input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Noise {
    /// Standard deviation in input units (keras-explainable's `noise`).
    Absolute(f64),
    /// Standard deviation `level · (max − min)` of each input sample (the
    /// SmoothGrad paper's noise level).
    Relative(f64),
    /// The noise itself: one tensor per noisy repetition, each shaped like
    /// the input (to replay a recorded draw).
    Given(Vec<TensorData>),
}

/// What [`Smooth`] keeps of the maps (or attributions) of its passes, each
/// statistic taken element-wise over the passes (captum's `NoiseTunnel`
/// `nt_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Statistic {
    /// The mean: SmoothGrad (`smoothgrad`).
    #[default]
    Mean,
    /// The mean of the squares: SmoothGrad² (`smoothgrad_sq`).
    MeanOfSquares,
    /// The mean of the squares minus the square of the mean, the biased
    /// variance: VarGrad (`vargrad`; Adebayo et al., *Local Explanation
    /// Methods for Deep Neural Networks Lack Sensitivity to Parameter
    /// Values*, 2018). Computed so, it loses its digits where the variance
    /// is small next to the mean.
    Variance,
}

/// SmoothGrad: the mean of an explainer's scores and raw maps over the clean
/// input and `repetitions − 1` noisy copies.
///
/// Smilkov et al., *SmoothGrad: removing noise by adding noise*, 2017.
///
/// `(e(x) + Σ_r e(x + ε_r)) / repetitions`, or with
/// [`with_clean(false)`](Self::with_clean) `Σ_r e(x + ε_r) / repetitions`
/// (captum's `NoiseTunnel`, which adds noise to every pass), or another
/// [`Statistic`] of the same passes (SmoothGrad², VarGrad): the maps, or per
/// input channel with [`Attributor::attribute`] when the inner method is
/// an [`Attributor`]. `ε_r ~ N(0, σ²)` is drawn from a
/// generator seeded by `seed` (no global random state: the same seed gives
/// bit-identical results whatever else runs). Noisy copies go through the
/// inner explainer `copies_per_pass` at a time, stacked along the batch;
/// the noise is drawn pass by pass, never all at once. Every noisy pass
/// explains the units the clean pass explained (so top-k targets are chosen
/// once, on the clean input). The noise is drawn for the batch as a whole:
/// a sample explained in another batch, or by the [`Pipeline`](crate::Pipeline)
/// driver in other chunks, gets other noise.
///
/// # Shapes
/// As the inner explainer.
///
/// # Cost
/// `repetitions` times the inner explainer's, in `1 + ⌈(repetitions − 1) /
/// copies_per_pass⌉` calls.
///
/// # Errors
/// `repetitions == 0`, `copies_per_pass == 0`, a negative or non-finite σ,
/// given noise of the wrong count or shape, and every error of the inner
/// explainer (naming the repetition).
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Explainer, Saliency, Noise, Probe, Smooth, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let smooth = Smooth::new(Saliency::new()).with_repetitions(8).with_noise(Noise::Relative(0.1));
/// let e = smooth.explain(&Probe::new(&model), x, &Targets::top_k(1))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct Smooth<E> {
    /// The wrapped explainer.
    pub inner: E,
    /// Passes in all, the clean one included (default 20).
    pub repetitions: usize,
    /// The noise (default absolute σ = 0.1).
    pub noise: Noise,
    /// Seed of the noise generator (default 0).
    pub seed: u64,
    /// Noisy copies per call of the inner explainer (default 1). On a CPU
    /// stacking copies is slower than calling once per copy (measured on
    /// ResNet-50, batch 8, 224², flex: 4 copies per call of saliency took
    /// 1.5× four single calls); raise it where larger batches pay, as on GPUs.
    pub copies_per_pass: usize,
    /// What is kept of the passes (default the mean).
    pub statistic: Statistic,
    /// Whether the clean input is one of the passes (default `true`,
    /// keras-explainable's; captum's `NoiseTunnel` is `false`).
    pub clean: bool,
}

impl<E> Smooth<E> {
    /// keras-explainable's defaults: 20 repetitions, σ = 0.1.
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            repetitions: 20,
            noise: Noise::Absolute(0.1),
            seed: 0,
            copies_per_pass: 1,
            statistic: Statistic::Mean,
            clean: true,
        }
    }

    /// What is kept of the passes.
    pub fn with_statistic(mut self, statistic: Statistic) -> Self {
        self.statistic = statistic;
        self
    }

    /// Whether the clean input is one of the passes.
    pub fn with_clean(mut self, clean: bool) -> Self {
        self.clean = clean;
        self
    }

    /// The noisy passes.
    fn noisy(&self) -> usize {
        self.repetitions - usize::from(self.clean)
    }

    /// Passes in all, the clean one included.
    pub fn with_repetitions(mut self, repetitions: usize) -> Self {
        self.repetitions = repetitions;
        self
    }

    /// The noise.
    pub fn with_noise(mut self, noise: Noise) -> Self {
        self.noise = noise;
        self
    }

    /// The seed of the noise generator.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Noisy copies per call of the inner explainer.
    pub fn with_copies_per_pass(mut self, copies_per_pass: usize) -> Self {
        self.copies_per_pass = copies_per_pass;
        self
    }

    fn check(&self, input_shape: &[usize]) -> crate::Result<()> {
        if self.repetitions == 0 {
            return Err(Error::config("repetitions", "must be at least 1"));
        }
        if self.statistic != Statistic::Mean && self.repetitions < 2 {
            return Err(Error::config(
                "repetitions",
                "SmoothGrad² and VarGrad need at least 2 passes",
            ));
        }
        if self.copies_per_pass == 0 {
            return Err(Error::config("copies_per_pass", "must be at least 1"));
        }
        match &self.noise {
            Noise::Absolute(s) | Noise::Relative(s) if !(s.is_finite() && *s >= 0.0) => Err(
                Error::config("noise", format!("σ must be finite and ≥ 0, got {s}")),
            ),
            Noise::Given(list) => {
                if list.len() != self.noisy() {
                    return Err(Error::Shape {
                        what: "given noise (one tensor per noisy repetition)",
                        expected: vec![self.noisy()],
                        actual: vec![list.len()],
                    });
                }
                match list.iter().find(|d| d.shape().to_vec() != input_shape) {
                    Some(d) => Err(Error::Shape {
                        what: "given noise",
                        expected: input_shape.to_vec(),
                        actual: d.shape().to_vec(),
                    }),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// A pass's scores `[B, N]`, units `[B, N]` and maps or attributions.
type Pass<const D: usize> = (Tensor<2>, Tensor<2, Int>, Tensor<D>);

impl<E> Smooth<E> {
    /// The passes: `call` explains an input (a stack of copies of the batch,
    /// copy-major) for the given targets.
    fn passes<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
        mut call: impl FnMut(Tensor<D>, &Targets) -> crate::Result<Pass<D>>,
    ) -> crate::Result<Pass<D>> {
        let dims = input.dims();
        check_not_empty("input", &dims)?;
        targets.validate(dims[0])?;
        self.check(&dims)?;
        let device = input.device();
        let batch = dims[0];
        let mut moments = Moments::new(self.statistic);
        // Every noisy pass explains the units of the clean input.
        let indices = if self.clean {
            let (scores, indices, values) = call(input.clone(), targets)?;
            moments.add(scores, values, 1);
            indices
        } else {
            let output = probe.forward(input.clone())?;
            targets.resolve(&output)?.tensor(&device)
        };
        let noisy_targets = targets.fixed(&indices)?;
        // Per-sample standard deviations, `[B, 1]`.
        let sigma: Tensor<2> = match &self.noise {
            Noise::Absolute(s) => Tensor::full([batch, 1], *s, &device),
            Noise::Relative(level) => {
                let flat = flatten_rest(input.clone());
                (flat.clone().max_dim(1) - flat.min_dim(1)).mul_scalar(*level)
            }
            Noise::Given(_) => Tensor::ones([batch, 1], &device),
        };
        let mut rng = SplitMix64(self.seed);
        let per_copy = numel(&dims);
        let noisy = self.noisy();
        let mut done = 0;
        while done < noisy {
            let copies = self.copies_per_pass.min(noisy - done);
            let values: Vec<f32> = match &self.noise {
                Noise::Given(list) => list[done..done + copies]
                    .iter()
                    .flat_map(|d| {
                        d.clone()
                            .convert::<f32>()
                            .try_into_vec::<f32>()
                            .unwrap_or_default()
                    })
                    .collect(),
                _ => rng.normals(copies * per_copy),
            };
            let noise: Tensor<2> = Tensor::from_data(
                TensorData::new(values, [copies * batch, per_copy / batch]),
                &device,
            );
            let stacked = flatten_rest(input.clone()).repeat_dim(0, copies);
            let sigmas = sigma.clone().repeat_dim(0, copies);
            let mut shape = dims;
            shape[0] = copies * batch;
            let noisy_input: Tensor<D> = (stacked + noise * sigmas).reshape(shape);
            let first = done + usize::from(self.clean);
            let (scores, _, values) =
                call(noisy_input, &noisy_targets.tile(copies)).map_err(|e| Error::Pass {
                    pass: format!("smooth repetitions {first}..{}", first + copies),
                    source: Box::new(e),
                })?;
            moments.add(scores, values, copies);
            done += copies;
        }
        let (scores, values) = moments.finish();
        Ok((scores, indices, values))
    }
}

impl<E: Explainer<M, D>, M: Explainable<D>, const D: usize> Explainer<M, D> for Smooth<E> {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let (scores, indices, maps) = self.passes(probe, input, targets, |x, t| {
            let e = self.inner.explain(probe, x, t)?;
            Ok((e.scores, e.indices, e.maps))
        })?;
        Ok(Explanation::new(scores, indices, maps))
    }

    fn postprocessing(&self) -> Postprocessing {
        self.inner.postprocessing()
    }
}

impl<E: Attributor<M, D>, M: Explainable<D>, const D: usize> Attributor<M, D> for Smooth<E> {
    /// The statistic of the inner method's per-channel attributions.
    fn attribute(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Attribution<D>> {
        let (scores, indices, values) = self.passes(probe, input, targets, |x, t| {
            let a = self.inner.attribute(probe, x, t)?;
            Ok((a.scores, a.indices, a.values))
        })?;
        Ok(Attribution::new(scores, indices, values))
    }
}

/// Running sums of the scores, the values and (for the statistics that
/// need them) their squares over passes.
struct Moments<const D: usize> {
    statistic: Statistic,
    scores: Option<Tensor<2>>,
    sum: Option<Tensor<D>>,
    squares: Option<Tensor<D>>,
    passes: usize,
}

fn accumulate<const D: usize>(slot: &mut Option<Tensor<D>>, value: Tensor<D>) {
    *slot = Some(match slot.take() {
        Some(s) => s + value,
        None => value,
    });
}

impl<const D: usize> Moments<D> {
    fn new(statistic: Statistic) -> Self {
        Self {
            statistic,
            scores: None,
            sum: None,
            squares: None,
            passes: 0,
        }
    }

    /// Adds `copies` passes stacked copy-major along the first axis.
    fn add(&mut self, scores: Tensor<2>, values: Tensor<D>, copies: usize) {
        accumulate(&mut self.scores, sum_copies(scores, copies));
        if self.statistic != Statistic::Mean {
            accumulate(
                &mut self.squares,
                sum_copies(values.clone().square(), copies),
            );
        }
        if self.statistic != Statistic::MeanOfSquares {
            accumulate(&mut self.sum, sum_copies(values, copies));
        }
        self.passes += copies;
    }

    fn finish(self) -> (Tensor<2>, Tensor<D>) {
        let n = self.passes as f64;
        let mean = |t: Option<Tensor<D>>| t.expect("accumulated for this statistic").div_scalar(n);
        let scores = self.scores.expect("at least one pass").div_scalar(n);
        let values = match self.statistic {
            Statistic::Mean => mean(self.sum),
            Statistic::MeanOfSquares => mean(self.squares),
            Statistic::Variance => {
                let m = mean(self.sum);
                mean(self.squares) - m.clone() * m
            }
        };
        (scores, values)
    }
}

/// `[copies·B, ...]` (copy-major) → the sum over copies, `[B, ...]`.
fn sum_copies<const D: usize>(t: Tensor<D>, copies: usize) -> Tensor<D> {
    if copies == 1 {
        return t;
    }
    let mut dims = t.dims();
    let batch = dims[0] / copies;
    dims[0] = batch;
    let rest = numel(&dims[1..]);
    t.reshape([copies, batch * rest]).sum_dim(0).reshape(dims)
}
