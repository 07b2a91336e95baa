//! What to explain: one scalar score per sample and unit, computed from the
//! model's output.

use std::fmt;
use std::sync::Arc;

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::output::Output;

/// The score a target function computes, with what it needs to know about
/// the rows it scores. See [`Targets::custom`].
#[derive(Debug)]
#[non_exhaustive]
pub struct ScoreInput<'a> {
    /// The model output of the rows to score, `[R, ...]`.
    pub output: &'a Output,
    /// For each row, the sample of the batch it belongs to (rows can be
    /// copies of a sample: replicated, masked, noisy).
    pub samples: &'a [usize],
    /// The unit (column of the targets) being scored.
    pub unit: usize,
}

type ScoreFn = Arc<dyn Fn(ScoreInput<'_>) -> Result<Tensor<1>> + Send + Sync>;

/// Which units are explained, per sample.
#[derive(Debug, Clone)]
enum Units {
    /// Row-major `[B, N]`; the shape as given (checked when used).
    Indices {
        indices: Vec<i64>,
        shape: Vec<usize>,
    },
    /// The same units for every sample.
    Each(Vec<i64>),
    /// Every unit of the output.
    All,
    /// The `k` highest-scoring units.
    TopK(usize),
}

/// How a unit's score is computed from the output.
#[derive(Clone)]
enum Kind {
    /// The output value of the unit (a logit, a regression output).
    Output,
    /// The softmax probability of the unit over each sample's whole output.
    Softmax,
    /// `Σ_p output[b, c, p] · mask[b, n, p]`, `c` the category (the unit).
    Segmentation {
        /// `[Bm, N, S]`, `Bm` = 1 (shared by every sample) or `B`.
        masks: Tensor<3>,
        /// The masks' spatial shape.
        spatial: Vec<usize>,
    },
    /// Cosine similarity of each sample's output to a concept.
    Similarity {
        /// `[Bc, N, E]`, `Bc` = 1 (shared) or `B`.
        concepts: Tensor<3>,
    },
    /// A user function.
    Custom(ScoreFn),
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Output => f.write_str("Output"),
            Kind::Softmax => f.write_str("Softmax"),
            Kind::Segmentation { masks, spatial } => f
                .debug_struct("Segmentation")
                .field("masks", &masks.dims())
                .field("spatial", spatial)
                .finish(),
            Kind::Similarity { concepts } => f
                .debug_struct("Similarity")
                .field("concepts", &concepts.dims())
                .finish(),
            Kind::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Per-unit factors: `[N]` for every sample or `[B, N]`.
#[derive(Debug, Clone)]
struct Signs {
    values: Vec<f32>,
    shape: Vec<usize>,
}

/// What to explain: for every sample `b` of a batch and every unit `n` of
/// `N` per sample, one scalar score `s[b, n]` computed from the model's
/// [`Output`]. Every explainer returns one map per score: maps
/// `[B, N, ...]` and scores `[B, N]`.
///
/// The scores (pytorch-grad-cam's target objects, Captum's `target`):
///
/// | constructor | score `s[b, n]` | pytorch-grad-cam |
/// | --- | --- | --- |
/// | [`indices`](Self::indices), [`each`](Self::each), [`all`](Self::all), [`top_k`](Self::top_k) | `out[b, i]`, `i` the unit (the default: a logit) | `ClassifierOutputTarget` |
/// | `… .softmax()` | `softmax(out[b])[i]` | `ClassifierOutputSoftmaxTarget` |
/// | `… .negated()`, `… .with_signs(…)` | `sign · out[b, i]` (a regression's increase or decrease) | `BinaryClassifierOutputTarget`, `RawScoresOutputTarget` |
/// | [`binary`](Self::binary) | `±out[b, 0]` | `BinaryClassifierOutputTarget` |
/// | [`segmentation`](Self::segmentation) | `Σ_p out[b, c, p] · mask[b, n, p]` | `SemanticSegmentationTarget` |
/// | [`similarity`](Self::similarity) | `cos(out[b], concept[b, n])` | `SimilarityToConceptTarget` |
/// | [`custom`](Self::custom) | any function of the output | any callable |
///
/// Unit indices name the output of one sample flattened in C order: for
/// logits `[B, L]` the class, for a map `[B, C, H, W]` the element
/// `c·H·W + y·W + x`.
///
/// ```
/// use burn_explainable::Targets;
///
/// // Sample 0 explains units 1 and 7, sample 1 explains units 4 and 2.
/// let targets = Targets::indices([[1, 7], [4, 2]]);
/// // The two best-scoring units of each sample, as softmax probabilities.
/// let top = Targets::top_k(2).softmax();
/// // A regression output: its increase and its decrease.
/// let both = Targets::each([0, 0]).with_signs(&[1.0, -1.0]);
/// # let _ = (targets, top, both);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Targets {
    units: Units,
    kind: Kind,
    signs: Option<Signs>,
    /// A construction error, reported when the targets are used.
    invalid: Option<String>,
}

impl Targets {
    fn with_units(units: Units) -> Self {
        Self {
            units,
            kind: Kind::Output,
            signs: None,
            invalid: None,
        }
    }

    /// Per-sample indices of shape `[B, N]`.
    pub fn indices<const B: usize, const N: usize>(rows: [[i64; N]; B]) -> Self {
        Self::with_units(Units::Indices {
            indices: rows.iter().flatten().copied().collect(),
            shape: vec![B, N],
        })
    }

    /// Per-sample indices from rows of equal length (`[B, N]`).
    ///
    /// Rows of unequal length are reported as an error when the targets are used.
    pub fn from_rows(rows: &[Vec<i64>]) -> Self {
        let n = rows.first().map_or(0, Vec::len);
        let mut t = Self::with_units(Units::Indices {
            indices: rows.iter().flatten().copied().collect(),
            shape: vec![rows.len(), n],
        });
        if rows.iter().any(|r| r.len() != n) {
            t.invalid = Some(format!(
                "target rows have different lengths: {:?}",
                rows.iter().map(Vec::len).collect::<Vec<_>>()
            ));
        }
        t
    }

    /// Indices from tensor data of any rank; only rank 2 (`[B, N]`) is accepted
    /// when the targets are used.
    pub fn from_data(data: TensorData) -> Self {
        let shape = data.shape().to_vec();
        let indices = data
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap_or_default();
        Self::with_units(Units::Indices { indices, shape })
    }

    /// Indices from an integer tensor; only rank 2 (`[B, N]`) is accepted when
    /// the targets are used.
    pub fn from_tensor<const R: usize>(tensor: Tensor<R, Int>) -> Self {
        Self::from_data(tensor.into_data())
    }

    /// The same units for every sample.
    pub fn each(units: impl Into<Vec<i64>>) -> Self {
        Self::with_units(Units::Each(units.into()))
    }

    /// Every output unit.
    pub fn all() -> Self {
        Self::with_units(Units::All)
    }

    /// The `k` highest-scoring units of each sample, best first.
    pub fn top_k(k: usize) -> Self {
        Self::with_units(Units::TopK(k))
    }

    /// The single output of a binary classifier (unit 0): `out[b, 0]` when
    /// `positive`, `−out[b, 0]` otherwise (pytorch-grad-cam's
    /// `BinaryClassifierOutputTarget(1)` and `(0)`).
    pub fn binary(positive: bool) -> Self {
        let sign = if positive { 1.0 } else { -1.0 };
        Self::each([0]).with_signs(&[sign])
    }

    /// Semantic segmentation: `s[b, n] = Σ_p out[b, c[b, n], p] · mask[b, n, p]`,
    /// the raw class map summed over a mask (pytorch-grad-cam's
    /// `SemanticSegmentationTarget`), for an output `[B, C, ...spatial]` of
    /// any spatial rank.
    ///
    /// `categories` is `[B, N]` (integer data) with masks `[B, N, ...spatial]`
    /// (one mask per category), or `[N]` for every sample with masks
    /// `[N, ...spatial]` shared by every sample. Masks may be weights, not
    /// only 0/1.
    ///
    /// ```
    /// use burn::prelude::*;
    /// use burn_explainable::Targets;
    ///
    /// let device = Device::flex();
    /// // Class 2 over the left half of a 4×6 output, for one image.
    /// let mask = Tensor::<4>::ones([1, 1, 4, 3], &device).pad([(0, 0), (0, 0), (0, 0), (0, 3)], 0.0);
    /// let t = Targets::segmentation(TensorData::new(vec![2i64], [1, 1]), mask);
    /// # let _ = t;
    /// ```
    pub fn segmentation<const R: usize>(categories: TensorData, masks: Tensor<R>) -> Self {
        let dims = masks.dims();
        let shared = categories.shape().len() == 1;
        let mut t = Self::from_data(categories);
        if shared && let Units::Indices { indices, .. } = &t.units {
            t.units = Units::Each(indices.clone());
        }
        // `[B, N, ...spatial]`, or `[N, ...spatial]` shared.
        let lead = if shared { 1 } else { 2 };
        if R < lead + 1 {
            t.invalid = Some(format!(
                "segmentation masks must be [B, N, ...spatial] (or [N, ...spatial] with categories [N]), got {dims:?}"
            ));
            t.kind = Kind::Segmentation {
                masks: Tensor::zeros([1, 1, 1], &masks.device()),
                spatial: vec![],
            };
            return t;
        }
        let spatial = dims[lead..].to_vec();
        let s: usize = spatial.iter().product();
        let (bm, n) = if shared {
            (1, dims[0])
        } else {
            (dims[0], dims[1])
        };
        t.kind = Kind::Segmentation {
            masks: masks.detach().without_autodiff().reshape([bm, n, s]),
            spatial,
        };
        t
    }

    /// Cosine similarity of each sample's output (an embedding `[B, E]`, or
    /// any output flattened per sample) to concept vectors:
    /// `s[b, n] = ⟨out[b], c[b, n]⟩ / max(‖out[b]‖·‖c[b, n]‖, 1e-8)`
    /// (pytorch-grad-cam's tutorial `SimilarityToConceptTarget`).
    ///
    /// `concepts` is `[B, N, E]`, or `[N, E]` shared by every sample.
    pub fn similarity<const R: usize>(concepts: Tensor<R>) -> Self {
        let dims = concepts.dims();
        let concepts = concepts.detach().without_autodiff();
        let (concepts, n) = match R {
            2 => (concepts.reshape([1, dims[0], dims[1]]), dims[0]),
            3 => (concepts.reshape([dims[0], dims[1], dims[2]]), dims[1]),
            _ => {
                let mut t = Self::each(Vec::<i64>::new());
                t.invalid = Some(format!(
                    "similarity concepts must be [B, N, E] or [N, E], got {dims:?}"
                ));
                return t;
            }
        };
        let mut t = Self::each((0..n as i64).collect::<Vec<_>>());
        t.kind = Kind::Similarity { concepts };
        t
    }

    /// `units` scores per sample computed by `score`, called once per unit
    /// with the output of the rows to score ([`ScoreInput`]); it returns one
    /// score per row, `[R]`. The scores must be differentiable functions of
    /// the output for the gradient methods (use tensor operations only).
    ///
    /// ```
    /// use burn::prelude::*;
    /// use burn_explainable::{Explainer, GradCam, Probe, Targets, testing::TinyNet};
    ///
    /// // Unit 0: the margin between class 0 and class 1.
    /// let margin = Targets::custom(1, |input| {
    ///     let logits: Tensor<2> = input.output.tensor()?;
    ///     let [rows, _] = logits.dims();
    ///     Ok((logits.clone().narrow(1, 0, 1) - logits.narrow(1, 1, 1)).reshape([rows]))
    /// });
    /// let device = Device::flex();
    /// let probe = Probe::new(&TinyNet::new(&device)).at(TinyNet::FEATURES);
    /// let e = GradCam::new().explain(&probe, Tensor::<4>::ones([2, 3, 8, 8], &device), &margin)?;
    /// assert_eq!(e.maps.dims(), [2, 1, 8, 8]);
    /// # Ok::<(), burn_explainable::Error>(())
    /// ```
    pub fn custom(
        units: usize,
        score: impl Fn(ScoreInput<'_>) -> Result<Tensor<1>> + Send + Sync + 'static,
    ) -> Self {
        let mut t = Self::each((0..units as i64).collect::<Vec<_>>());
        t.kind = Kind::Custom(Arc::new(score));
        t
    }

    /// Scores the softmax probability of each unit over the sample's whole
    /// output instead of the raw output.
    pub fn softmax(mut self) -> Self {
        match self.kind {
            Kind::Output | Kind::Softmax => self.kind = Kind::Softmax,
            _ => {
                self.invalid = Some(
                    "softmax applies to output-unit targets (indices, each, all, top-k)".into(),
                )
            }
        }
        self
    }

    /// Negates every score: explains a decrease of the output.
    pub fn negated(mut self) -> Self {
        self.signs = Some(Signs {
            values: vec![-1.0],
            shape: vec![],
        });
        self
    }

    /// Multiplies the score of unit column `n` by `signs[n]` (for every
    /// sample): `+1` explains an increase, `−1` a decrease.
    pub fn with_signs(mut self, signs: &[f32]) -> Self {
        self.signs = Some(Signs {
            values: signs.to_vec(),
            shape: vec![signs.len()],
        });
        self
    }

    /// Multiplies the score of sample `b`, unit column `n` by `signs[b, n]`
    /// (`[B, N]` float data).
    pub fn with_sign_rows(mut self, signs: TensorData) -> Self {
        let shape = signs.shape().to_vec();
        let values = signs
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        if shape.len() != 2 {
            self.invalid = Some(format!("target signs must be [B, N], got {shape:?}"));
        }
        self.signs = Some(Signs { values, shape });
        self
    }

    /// The targets of samples `start..start + len` of a batch: the matching
    /// rows of everything given per sample (indices, masks, concepts, signs).
    ///
    /// ```
    /// use burn_explainable::Targets;
    ///
    /// let t = Targets::indices([[1, 7], [4, 2], [9, 0]]);
    /// assert_eq!(t.rows(1, 2).units_per_sample(), Some(2));
    /// assert_eq!(t.rows(1, 2).batch(), Some(2));
    /// ```
    pub fn rows(&self, start: usize, len: usize) -> Targets {
        let mut t = self.clone();
        if let Units::Indices { indices, shape } = &self.units
            && shape.len() == 2
            && self.invalid.is_none()
        {
            let n = shape[1];
            let end = start
                .saturating_add(len)
                .saturating_mul(n)
                .min(indices.len());
            let begin = start.saturating_mul(n).min(end);
            t.units = Units::Indices {
                indices: indices[begin..end].to_vec(),
                shape: vec![(end - begin) / n.max(1), n],
            };
        }
        if let Some(s) = &self.signs
            && s.shape.len() == 2
        {
            let n = s.shape[1];
            let end = start
                .saturating_add(len)
                .saturating_mul(n)
                .min(s.values.len());
            let begin = start.saturating_mul(n).min(end);
            t.signs = Some(Signs {
                values: s.values[begin..end].to_vec(),
                shape: vec![(end - begin) / n.max(1), n],
            });
        }
        t.kind = match &self.kind {
            Kind::Segmentation { masks, spatial } if masks.dims()[0] > 1 => Kind::Segmentation {
                masks: narrow_rows(masks, start, len),
                spatial: spatial.clone(),
            },
            Kind::Similarity { concepts } if concepts.dims()[0] > 1 => Kind::Similarity {
                concepts: narrow_rows(concepts, start, len),
            },
            other => other.clone(),
        };
        t
    }

    /// The targets of `copies` copies of the batch stacked along it (copy-major).
    pub(crate) fn tile(&self, copies: usize) -> Targets {
        let mut t = self.clone();
        if let Units::Indices { indices, shape } = &self.units
            && shape.len() == 2
        {
            t.units = Units::Indices {
                indices: indices.repeat(copies),
                shape: vec![shape[0] * copies, shape[1]],
            };
        }
        if let Some(s) = &self.signs
            && s.shape.len() == 2
        {
            t.signs = Some(Signs {
                values: s.values.repeat(copies),
                shape: vec![s.shape[0] * copies, s.shape[1]],
            });
        }
        t.kind = match &self.kind {
            Kind::Segmentation { masks, spatial } if masks.dims()[0] > 1 => Kind::Segmentation {
                masks: masks.clone().repeat_dim(0, copies),
                spatial: spatial.clone(),
            },
            Kind::Similarity { concepts } if concepts.dims()[0] > 1 => Kind::Similarity {
                concepts: concepts.clone().repeat_dim(0, copies),
            },
            other => other.clone(),
        };
        t
    }

    /// The same scores with the units a first pass resolved (`[B, N]`), so
    /// that later passes explain the same units even when the targets were
    /// top-k or all.
    pub(crate) fn fixed(&self, indices: &Tensor<2, Int>) -> Result<Targets> {
        let shape = indices.dims().to_vec();
        let mut t = self.clone();
        t.units = Units::Indices {
            indices: read_i64(indices.clone())?,
            shape,
        };
        Ok(t)
    }

    /// Applies `f` to the segmentation masks seen as `[Bm, N, ...spatial]`
    /// (for augmentations that move the output's pixels); other targets are
    /// returned unchanged.
    pub(crate) fn map_masks<const D: usize>(
        &self,
        f: impl FnOnce(Tensor<D>) -> Result<Tensor<D>>,
    ) -> Result<Targets> {
        let Kind::Segmentation { masks, spatial } = &self.kind else {
            return Ok(self.clone());
        };
        let [bm, n, _] = masks.dims();
        if spatial.len() + 2 != D {
            return Err(Error::Shape {
                what: "segmentation mask spatial axes (must match the input's to follow an augmentation)",
                expected: vec![D - 2],
                actual: vec![spatial.len()],
            });
        }
        let mut shape = [0; D];
        shape[0] = bm;
        shape[1] = n;
        shape[2..].copy_from_slice(spatial);
        let moved = f(masks.clone().reshape(shape))?;
        let new_spatial = moved.dims()[2..].to_vec();
        let s = new_spatial.iter().product();
        let mut t = self.clone();
        t.kind = Kind::Segmentation {
            masks: moved.reshape([bm, n, s]),
            spatial: new_spatial,
        };
        Ok(t)
    }

    /// Number of units per sample, when known without running the model.
    pub fn units_per_sample(&self) -> Option<usize> {
        match &self.units {
            Units::Indices { shape, .. } => shape.get(1).copied(),
            Units::Each(units) => Some(units.len()),
            Units::All => None,
            Units::TopK(k) => Some(*k),
        }
    }

    /// The number of samples the targets are given for, if they are given
    /// per sample.
    pub fn batch(&self) -> Option<usize> {
        match &self.units {
            Units::Indices { shape, .. } => shape.first().copied(),
            _ => None,
        }
    }

    /// Checks everything that can be checked before running the model.
    pub(crate) fn validate(&self, batch: usize) -> Result<()> {
        if let Some(reason) = &self.invalid {
            return Err(Error::InvalidTargets {
                reason: reason.clone(),
            });
        }
        let n = match &self.units {
            Units::Indices { indices, shape } => {
                if shape.len() != 2 {
                    return Err(Error::Rank {
                        what: "target indices",
                        expected: 2,
                        shape: shape.clone(),
                    });
                }
                if shape[0].checked_mul(shape[1]) != Some(indices.len()) {
                    return Err(Error::InvalidTargets {
                        reason: format!("{} indices do not fill shape {shape:?}", indices.len()),
                    });
                }
                if shape[0] != batch {
                    return Err(Error::BatchMismatch {
                        input: batch,
                        targets: shape[0],
                    });
                }
                if shape[1] == 0 {
                    return Err(Error::Empty {
                        what: "target indices",
                        shape: shape.clone(),
                    });
                }
                Some(shape[1])
            }
            Units::Each(units) if units.is_empty() => {
                return Err(Error::Empty {
                    what: "target indices",
                    shape: vec![0],
                });
            }
            Units::Each(units) => Some(units.len()),
            Units::TopK(0) => {
                return Err(Error::InvalidTargets {
                    reason: "top-k needs k ≥ 1".into(),
                });
            }
            Units::TopK(k) => Some(*k),
            Units::All => None,
        };
        let check_rows = |what: &'static str, dims: [usize; 3]| -> Result<()> {
            if dims[0] != 1 && dims[0] != batch {
                return Err(Error::BatchMismatch {
                    input: batch,
                    targets: dims[0],
                });
            }
            if let Some(n) = n
                && dims[1] != n
            {
                return Err(Error::Shape {
                    what,
                    expected: vec![dims[0], n],
                    actual: dims[..2].to_vec(),
                });
            }
            Ok(())
        };
        match &self.kind {
            Kind::Segmentation { masks, .. } => {
                check_rows("segmentation masks [B, N] (one per category)", masks.dims())?
            }
            Kind::Similarity { concepts } => {
                check_rows("similarity concepts [B, N] (one per unit)", concepts.dims())?
            }
            _ => {}
        }
        if let Some(s) = &self.signs {
            let ok = match s.shape.len() {
                0 => true,
                1 => n.is_none_or(|n| s.shape[0] == n),
                _ => s.shape[0] == batch && n.is_none_or(|n| s.shape[1] == n),
            };
            if !ok || s.values.len() != s.shape.iter().product::<usize>() {
                return Err(Error::Shape {
                    what: "target signs ([N] or [B, N])",
                    expected: vec![batch, n.unwrap_or(0)],
                    actual: s.shape.clone(),
                });
            }
        }
        Ok(())
    }

    /// Resolves the targets against the model's output for a batch of `B` rows.
    pub(crate) fn resolve(&self, output: &Output) -> Result<Resolved> {
        let batch = output.rows();
        let units = output.units();
        self.validate(batch)?;
        let (indices, n) = match &self.units {
            Units::Indices { indices, shape } => (indices.clone(), shape[1]),
            Units::Each(list) => {
                let n = list.len();
                (list.iter().copied().cycle().take(n * batch).collect(), n)
            }
            Units::All => ((0..batch).flat_map(|_| 0..units as i64).collect(), units),
            Units::TopK(k) => {
                if *k > units {
                    return Err(Error::TopKTooLarge { k: *k, units });
                }
                let (_, idx) = output.plain().flat().topk_with_indices(*k, 1);
                (read_i64(idx)?, *k)
            }
        };
        // The range a unit index must fall in, per kind.
        let limit = match &self.kind {
            Kind::Output | Kind::Softmax => Some(units),
            Kind::Segmentation { spatial, .. } => {
                let dims = output.dims();
                if dims.len() < 3 || dims[2..] != spatial[..] {
                    return Err(Error::Shape {
                        what: "segmentation masks' spatial shape vs the model output [B, C, ...spatial]",
                        expected: dims.get(2..).unwrap_or(&[]).to_vec(),
                        actual: spatial.clone(),
                    });
                }
                Some(dims[1])
            }
            Kind::Similarity { concepts } => {
                let e = concepts.dims()[2];
                if e != units {
                    return Err(Error::Shape {
                        what: "similarity concept length vs the model's embedding length",
                        expected: vec![units],
                        actual: vec![e],
                    });
                }
                None
            }
            Kind::Custom(_) => None,
        };
        if let Some(limit) = limit {
            for (pos, &index) in indices.iter().enumerate() {
                if index < 0 || index as usize >= limit {
                    return Err(Error::TargetOutOfRange {
                        sample: pos / n,
                        column: pos % n,
                        index,
                        units: limit,
                    });
                }
            }
        }
        Ok(Resolved {
            indices,
            batch,
            units: n,
            kind: self.kind.clone(),
            signs: self.signs.clone(),
        })
    }
}

fn narrow_rows(t: &Tensor<3>, start: usize, len: usize) -> Tensor<3> {
    let rows = t.dims()[0];
    let start = start.min(rows);
    t.clone().narrow(0, start, len.min(rows - start))
}

impl From<Vec<Vec<i64>>> for Targets {
    fn from(rows: Vec<Vec<i64>>) -> Self {
        Targets::from_rows(&rows)
    }
}

/// Targets resolved against a batch: `batch × units` indices, row-major,
/// and how to score them.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub indices: Vec<i64>,
    pub batch: usize,
    pub units: usize,
    kind: Kind,
    signs: Option<Signs>,
}

impl Resolved {
    /// The indices as a `[B, N]` integer tensor.
    pub fn tensor(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.indices.clone(), [self.batch, self.units]),
            device,
        )
    }

    /// Whether the scores are raw output units (what CAM's class weights explain).
    pub fn is_output_units(&self) -> bool {
        matches!(self.kind, Kind::Output)
    }

    /// The sign of each score `[B, N]` (ones when none was given).
    pub fn signs(&self, device: &Device) -> Option<Tensor<2>> {
        let s = self.signs.as_ref()?;
        let values: Vec<f32> = (0..self.batch * self.units)
            .map(|i| sign_at(s, i / self.units, i % self.units))
            .collect();
        Some(Tensor::from_data(
            TensorData::new(values, [self.batch, self.units]),
            device,
        ))
    }

    /// Scores of rows `b·n + j` (`n = columns.len()`, sample-major copies)
    /// for unit column `columns.start + j`: `[B, n]`, differentiable when
    /// the output is.
    pub fn scores_diagonal(
        &self,
        output: &Output,
        columns: std::ops::Range<usize>,
    ) -> Result<Tensor<2>> {
        let n = columns.len();
        let batch = output.rows() / n;
        let samples: Vec<usize> = (0..batch).flat_map(|b| std::iter::repeat_n(b, n)).collect();
        let cols: Vec<usize> = (0..batch).flat_map(|_| columns.clone()).collect();
        Ok(self.scores(output, &samples, &cols, 1)?.reshape([batch, n]))
    }

    /// Every unit's score for each sample of a plain forward pass (`output`
    /// of `B` rows, row `b` sample `b`): `[B, N]`.
    pub fn sample_scores(&self, output: &Output) -> Result<Tensor<2>> {
        let samples: Vec<usize> = (0..output.rows()).collect();
        self.scores_all(output, &samples)
    }

    /// Every unit's score for each row of `output`, row `r` a copy of sample
    /// `samples[r]`: `[R, N]`.
    pub fn scores_all(&self, output: &Output, samples: &[usize]) -> Result<Tensor<2>> {
        let cols: Vec<usize> = samples.iter().flat_map(|_| 0..self.units).collect();
        self.scores(output, samples, &cols, self.units)
    }

    /// One score per row of `output`: row `r`, a copy of sample
    /// `samples[r]`, scored for its unit column `columns[r]`: `[R]`.
    pub fn scores_at(
        &self,
        output: &Output,
        samples: &[usize],
        columns: &[usize],
    ) -> Result<Tensor<1>> {
        let rows = output.rows();
        Ok(self.scores(output, samples, columns, 1)?.reshape([rows]))
    }

    /// Scores `[R, m]`: row `r` (of sample `samples[r]`) for unit columns
    /// `cols[r·m .. (r+1)·m]`.
    fn scores(
        &self,
        output: &Output,
        samples: &[usize],
        cols: &[usize],
        m: usize,
    ) -> Result<Tensor<2>> {
        let rows = output.rows();
        let device = output.flat().device();
        let unit_of = |r: usize, i: usize| self.indices[samples[r] * self.units + cols[r * m + i]];
        let int2 = |values: Vec<i64>, shape: [usize; 2]| {
            Tensor::<2, Int>::from_data(TensorData::new(values, shape), &device)
        };
        // Rows of `[Bx, N, ...]` per-sample data for (row, column) pairs:
        // `b·N + n`, or `n` when shared by every sample.
        let pair_rows = |shared: bool| -> Tensor<1, Int> {
            let v: Vec<i64> = (0..rows * m)
                .map(|p| {
                    let (r, i) = (p / m, p % m);
                    let n = cols[r * m + i];
                    (if shared {
                        n
                    } else {
                        samples[r] * self.units + n
                    }) as i64
                })
                .collect();
            Tensor::from_data(TensorData::new(v, [rows * m]), &device)
        };
        let scores = match &self.kind {
            Kind::Output | Kind::Softmax => {
                let idx: Vec<i64> = (0..rows * m).map(|p| unit_of(p / m, p % m)).collect();
                let flat = output.flat();
                let flat = if matches!(self.kind, Kind::Softmax) {
                    burn::tensor::activation::softmax(flat, 1)
                } else {
                    flat
                };
                flat.gather(1, int2(idx, [rows, m]))
            }
            Kind::Segmentation { masks, .. } => {
                let dims = output.dims();
                let (c, s) = (dims[1], output.units() / dims[1]);
                let out = output.flat().reshape([rows, c, s]);
                let cats: Vec<i64> = (0..rows * m).map(|p| unit_of(p / m, p % m)).collect();
                let index =
                    Tensor::<3, Int>::from_data(TensorData::new(cats, [rows, m, 1]), &device)
                        .expand([rows, m, s]);
                let class_maps = out.gather(1, index); // [R, m, S]
                let [bm, n, _] = masks.dims();
                let mask = masks
                    .clone()
                    .reshape([bm * n, s])
                    .select(0, pair_rows(bm == 1))
                    .reshape([rows, m, s]);
                (class_maps * mask).sum_dim(2).reshape([rows, m])
            }
            Kind::Similarity { concepts } => {
                let [bc, n, e] = concepts.dims();
                let c = concepts
                    .clone()
                    .reshape([bc * n, e])
                    .select(0, pair_rows(bc == 1))
                    .reshape([rows, m, e]);
                let u = output.flat(); // [R, E]
                let dot = (u.clone().unsqueeze_dim::<3>(1) * c.clone())
                    .sum_dim(2)
                    .reshape([rows, m]);
                let u_norm = u.powi_scalar(2).sum_dim(1).sqrt(); // [R, 1]
                let c_norm = c.powi_scalar(2).sum_dim(2).sqrt().reshape([rows, m]);
                dot / (u_norm * c_norm).clamp_min(1e-8)
            }
            Kind::Custom(f) => {
                // One call per distinct unit, over the rows that need it.
                let mut parts: Vec<(Vec<usize>, Tensor<1>)> = Vec::new();
                let mut units: Vec<usize> = cols.to_vec();
                units.sort_unstable();
                units.dedup();
                for unit in units {
                    let pairs: Vec<usize> = (0..rows * m).filter(|&p| cols[p] == unit).collect();
                    let row_index: Vec<usize> = pairs.iter().map(|p| p / m).collect();
                    let sub = output.select_rows(&row_index);
                    let sub_samples: Vec<usize> = row_index.iter().map(|&r| samples[r]).collect();
                    let s = f(ScoreInput {
                        output: &sub,
                        samples: &sub_samples,
                        unit,
                    })?;
                    if s.dims() != [pairs.len()] {
                        return Err(Error::Shape {
                            what: "custom score function output (one score per row)",
                            expected: vec![pairs.len()],
                            actual: s.dims().to_vec(),
                        });
                    }
                    parts.push((pairs, s));
                }
                // Back to (row, column) order.
                let mut order = vec![0i64; rows * m];
                let mut at = 0;
                for (pairs, _) in &parts {
                    for &p in pairs {
                        order[p] = at;
                        at += 1;
                    }
                }
                let all = Tensor::cat(parts.into_iter().map(|(_, s)| s).collect(), 0);
                all.select(
                    0,
                    Tensor::from_data(TensorData::new(order, [rows * m]), &device),
                )
                .reshape([rows, m])
            }
        };
        Ok(match &self.signs {
            None => scores,
            Some(s) => {
                let v: Vec<f32> = (0..rows * m)
                    .map(|p| sign_at(s, samples[p / m], cols[p]))
                    .collect();
                scores * Tensor::<2>::from_data(TensorData::new(v, [rows, m]), &device)
            }
        })
    }
}

fn sign_at(s: &Signs, sample: usize, column: usize) -> f32 {
    match s.shape.len() {
        0 => s.values[0],
        1 => s.values[column],
        _ => s.values[sample * s.shape[1] + column],
    }
}

/// Reads an integer tensor back as `i64`, whatever the backend's integer type.
pub(crate) fn read_i64<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| Error::Data(format!("{e:?}")))
}
