//! SmoothGrad-style noise averaging around any explainer.

use burn::prelude::*;

use crate::combinators::Mean;
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

/// SmoothGrad: the mean of an explainer's scores and raw maps over the clean
/// input and `repetitions − 1` noisy copies.
///
/// Smilkov et al., *SmoothGrad: removing noise by adding noise*, 2017.
///
/// `(e(x) + Σ_r e(x + ε_r)) / repetitions`, `ε_r ~ N(0, σ²)` drawn from a
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
        }
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
        if self.copies_per_pass == 0 {
            return Err(Error::config("copies_per_pass", "must be at least 1"));
        }
        match &self.noise {
            Noise::Absolute(s) | Noise::Relative(s) if !(s.is_finite() && *s >= 0.0) => Err(
                Error::config("noise", format!("σ must be finite and ≥ 0, got {s}")),
            ),
            Noise::Given(list) => {
                if list.len() != self.repetitions - 1 {
                    return Err(Error::Shape {
                        what: "given noise (one tensor per noisy repetition)",
                        expected: vec![self.repetitions - 1],
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

impl<E: Explainer<M, D>, M: Explainable<D>, const D: usize> Explainer<M, D> for Smooth<E> {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let dims = input.dims();
        check_not_empty("input", &dims)?;
        targets.validate(dims[0])?;
        self.check(&dims)?;
        let device = input.device();
        let batch = dims[0];
        let clean = self.inner.explain(probe, input.clone(), targets)?;
        let mut mean = Mean::new();
        mean.add(clean.scores, clean.maps, 1);
        let noisy_targets = targets.fixed(&clean.indices)?;
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
        let mut done = 0;
        while done + 1 < self.repetitions {
            let copies = self.copies_per_pass.min(self.repetitions - 1 - done);
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
            let noisy: Tensor<D> = (stacked + noise * sigmas).reshape(shape);
            let e = self
                .inner
                .explain(probe, noisy, &noisy_targets.tile(copies))
                .map_err(|e| Error::Pass {
                    pass: format!("smooth repetitions {}..{}", done + 1, done + 1 + copies),
                    source: Box::new(e),
                })?;
            mean.add(
                sum_copies(e.scores, copies),
                sum_copies(e.maps, copies),
                copies,
            );
            done += copies;
        }
        Ok(mean.finish(clean.indices))
    }

    fn postprocessing(&self) -> Postprocessing {
        self.inner.postprocessing()
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
