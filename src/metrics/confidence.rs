//! The score of the input multiplied by the map.

use burn::prelude::*;

use crate::error::Result;
use crate::explainable::Explainable;
use crate::metrics::{Clean, gather_rows, rows_per_pass};
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::{flatten_rest, numel};

/// The score of the input multiplied by the map, against the input's score:
/// a map that keeps what the model needs keeps the score.
///
/// pytorch-grad-cam's `CamMultImageConfidenceChange`, `DropInConfidence`
/// and `IncreaseInConfidence`; Chattopadhay et al., *Grad-CAM++*, WACV 2018
/// (Average Drop, Increase in Confidence), as TorchCAM's
/// `ClassificationMetric` computes them.
///
/// For each sample `b` and unit `n`, `s0 = s[b, n](x)` and
/// `s1 = s[b, n](x ⊙ map[b, n])`, the map broadcast over the channels (the
/// input as given, e.g. normalised, times the map as given: maps in
/// `[0, 1]` are what the peers pass). [`ConfidenceChange`] derives every
/// peer's number from the two scores.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...spatial]`
/// - scores: `[B, N]`
///
/// # Cost
/// One forward pass of the input, then one of `B · N` masked copies, in
/// passes of `rows_per_pass` rows.
///
/// # Errors
/// `rows_per_pass == 0`, maps not shaped `[B, N, ...spatial]` or not
/// finite, and the input and target errors of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::metrics::CamMultImage;
/// use burn_explainable::{Explainer, GradCam, Probe, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe = Probe::new(&model).at(TinyNet::FEATURES);
/// let x = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &device);
/// let targets = Targets::top_k(2).softmax();
/// let maps = GradCam::new().explain(&probe, x.clone(), &targets)?.maps;
/// let change = CamMultImage::new().evaluate(&probe, x, &targets, &maps)?;
/// // TorchCAM's Average Drop: the mean relative drop over the samples.
/// let average_drop = change.relative_drop().mean_dim(0);
/// assert_eq!(average_drop.dims(), [1, 2]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
#[must_use]
pub struct CamMultImage {
    /// Masked copies per forward pass (default
    /// [`ROWS_PER_PASS`](crate::metrics::ROWS_PER_PASS)).
    pub rows_per_pass: Option<usize>,
}

/// The scores of the input and of the input multiplied by the map.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConfidenceChange {
    /// `s0`, the score of the input `[B, N]`.
    pub before: Tensor<2>,
    /// `s1`, the score of the input multiplied by the map `[B, N]`.
    pub after: Tensor<2>,
}

impl ConfidenceChange {
    /// `s1 − s0`: pytorch-grad-cam's `CamMultImageConfidenceChange`.
    #[must_use]
    pub fn change(&self) -> Tensor<2> {
        self.after.clone() - self.before.clone()
    }

    /// `max(s0 − s1, 0)`: pytorch-grad-cam's `DropInConfidence`
    /// (absolute, not divided by `s0`).
    #[must_use]
    pub fn absolute_drop(&self) -> Tensor<2> {
        (self.before.clone() - self.after.clone()).clamp_min(0.0)
    }

    /// `max(s0 − s1, 0) / (s0 + 10⁻⁷)`: one sample's term of Average Drop
    /// (TorchCAM's `avg_drop` is its mean over the samples; Chattopadhay et
    /// al. report that mean in percent).
    #[must_use]
    pub fn relative_drop(&self) -> Tensor<2> {
        self.absolute_drop() / self.before.clone().add_scalar(1e-7)
    }

    /// 1 where `s1 > s0`, else 0: pytorch-grad-cam's `IncreaseInConfidence`;
    /// its mean over the samples is TorchCAM's `conf_increase`.
    #[must_use]
    pub fn increase(&self) -> Tensor<2> {
        self.after.clone().greater(self.before.clone()).float()
    }
}

impl CamMultImage {
    /// One pass per 32 masked copies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the masked copies per forward pass.
    pub fn with_rows_per_pass(mut self, rows: usize) -> Self {
        self.rows_per_pass = Some(rows);
        self
    }

    /// The scores before and after multiplying `input` by `maps`.
    ///
    /// # Errors
    /// See the type's documentation.
    pub fn evaluate<M: Explainable<D>, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
        maps: &Tensor<D>,
    ) -> Result<ConfidenceChange> {
        let per_pass = rows_per_pass(self.rows_per_pass)?;
        let clean = Clean::new(probe, input, targets, maps)?;
        let dims = clean.input.dims();
        let (batch, units) = (clean.resolved.batch, clean.resolved.units);
        let pixels = numel(&dims[2..]);
        let x = flatten_rest(clean.input.clone()).reshape([batch, dims[1], pixels]);
        let m = flatten_rest(maps.clone()).reshape([batch * units, 1, pixels]);
        let pairs: Vec<(usize, usize)> = (0..batch)
            .flat_map(|b| (0..units).map(move |n| (b, n)))
            .collect();
        let after = clean.perturbed_scores(probe, &pairs, per_pass, |start, len| {
            let rows: Vec<usize> = (start..start + len).collect();
            let samples: Vec<usize> = pairs[start..start + len].iter().map(|p| p.0).collect();
            Ok(gather_rows(&x, &samples) * gather_rows(&m, &rows))
        })?;
        let device = clean.input.device();
        Ok(ConfidenceChange {
            before: clean.scores,
            after: Tensor::from_data(TensorData::new(after, [batch, units]), &device),
        })
    }
}
