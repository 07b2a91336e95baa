//! Which model outputs ("units") to explain.

use burn::prelude::*;

use crate::error::{Error, Result};

/// The units of the model output to explain, for every sample of a batch.
///
/// Every explainer returns one map per selected unit: with `N` units per
/// sample the maps have shape `[B, N, ...]` and the scores `[B, N]`.
///
/// ```
/// use burn_explainable::Targets;
///
/// // Sample 0 explains units 1 and 7, sample 1 explains units 4 and 2.
/// let targets = Targets::indices([[1, 7], [4, 2]]);
/// // The two best-scoring units of each sample.
/// let top = Targets::top_k(2);
/// // Every output unit.
/// let all = Targets::all();
/// # let _ = (targets, top, all);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Per-sample unit indices, row-major `[B, N]`: row `b` lists the units of sample `b`.
    Indices {
        /// The indices, row-major.
        indices: Vec<i64>,
        /// The shape of the indices as given. Anything but `[B, N]` is an error when resolved.
        shape: Vec<usize>,
    },
    /// The same units for every sample.
    Each(Vec<i64>),
    /// Every unit the model outputs.
    All,
    /// The `k` highest-scoring units of each sample, best first.
    TopK(usize),
}

impl Targets {
    /// Per-sample indices of shape `[B, N]`.
    pub fn indices<const B: usize, const N: usize>(rows: [[i64; N]; B]) -> Self {
        Targets::Indices {
            indices: rows.iter().flatten().copied().collect(),
            shape: vec![B, N],
        }
    }

    /// Per-sample indices from rows of equal length (`[B, N]`).
    ///
    /// Rows of unequal length are reported as an error when the targets are used.
    pub fn from_rows(rows: &[Vec<i64>]) -> Self {
        let n = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != n) {
            // Keep the ragged data: resolution reports the mismatch.
            return Targets::Indices {
                indices: rows.iter().flatten().copied().collect(),
                shape: vec![rows.len(), usize::MAX],
            };
        }
        Targets::Indices {
            indices: rows.iter().flatten().copied().collect(),
            shape: vec![rows.len(), n],
        }
    }

    /// Indices from tensor data of any rank; only rank 2 (`[B, N]`) is accepted
    /// when the targets are used.
    pub fn from_data(data: TensorData) -> Self {
        let shape = data.shape().to_vec();
        let indices = data
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap_or_default();
        Targets::Indices { indices, shape }
    }

    /// Indices from an integer tensor; only rank 2 (`[B, N]`) is accepted when
    /// the targets are used.
    pub fn from_tensor<const R: usize>(tensor: Tensor<R, Int>) -> Self {
        Self::from_data(tensor.into_data())
    }

    /// The same units for every sample.
    pub fn each(units: impl Into<Vec<i64>>) -> Self {
        Targets::Each(units.into())
    }

    /// Every output unit.
    pub fn all() -> Self {
        Targets::All
    }

    /// The `k` highest-scoring units of each sample.
    pub fn top_k(k: usize) -> Self {
        Targets::TopK(k)
    }

    /// The targets of samples `start..start + len` of a batch: the matching
    /// rows of per-sample indices, the targets themselves otherwise.
    ///
    /// ```
    /// use burn_explainable::Targets;
    ///
    /// let t = Targets::indices([[1, 7], [4, 2], [9, 0]]);
    /// assert_eq!(t.rows(1, 2), Targets::indices([[4, 2], [9, 0]]));
    /// assert_eq!(Targets::top_k(3).rows(1, 2), Targets::top_k(3));
    /// ```
    pub fn rows(&self, start: usize, len: usize) -> Targets {
        match self {
            Targets::Indices { indices, shape } if shape.len() == 2 && shape[1] != usize::MAX => {
                // Rows past the end are left out; using the result on a
                // batch of `len` samples then reports the mismatch.
                let n = shape[1];
                let end = start
                    .saturating_add(len)
                    .saturating_mul(n)
                    .min(indices.len());
                let begin = start.saturating_mul(n).min(end);
                Targets::Indices {
                    indices: indices[begin..end].to_vec(),
                    shape: vec![(end - begin) / n.max(1), n],
                }
            }
            other => other.clone(),
        }
    }

    /// The targets of `copies` copies of the batch stacked along it (copy-major).
    pub(crate) fn tile(&self, copies: usize) -> Targets {
        match self {
            Targets::Indices { indices, shape } if shape.len() == 2 => Targets::Indices {
                indices: indices.repeat(copies),
                shape: vec![shape[0] * copies, shape[1]],
            },
            other => other.clone(),
        }
    }

    /// Number of units per sample, when known without running the model.
    pub(crate) fn units_per_sample(&self) -> Option<usize> {
        match self {
            Targets::Indices { shape, .. } => shape.get(1).copied(),
            Targets::Each(units) => Some(units.len()),
            Targets::All => None,
            Targets::TopK(k) => Some(*k),
        }
    }

    /// Checks everything that can be checked before running the model.
    pub(crate) fn validate(&self, batch: usize) -> Result<()> {
        match self {
            Targets::Indices { indices, shape } => {
                if shape.len() != 2 {
                    return Err(Error::Rank {
                        what: "target indices",
                        expected: 2,
                        shape: shape.clone(),
                    });
                }
                if shape[1] == usize::MAX || shape[0].checked_mul(shape[1]) != Some(indices.len()) {
                    return Err(Error::config(
                        "target indices",
                        "rows of the index list have different lengths",
                    ));
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
                Ok(())
            }
            Targets::Each(units) if units.is_empty() => Err(Error::Empty {
                what: "target indices",
                shape: vec![0],
            }),
            Targets::TopK(0) => Err(Error::config("top-k", "k must be at least 1")),
            _ => Ok(()),
        }
    }

    /// Resolves the targets against the model's logits for a batch `[B, L]`.
    pub(crate) fn resolve(&self, logits: &Tensor<2>) -> Result<Resolved> {
        let [batch, units] = logits.dims();
        self.validate(batch)?;
        let (indices, n) = match self {
            Targets::Indices { indices, shape } => (indices.clone(), shape[1]),
            Targets::Each(list) => {
                let n = list.len();
                (list.iter().copied().cycle().take(n * batch).collect(), n)
            }
            Targets::All => ((0..batch).flat_map(|_| 0..units as i64).collect(), units),
            Targets::TopK(k) => {
                if *k > units {
                    return Err(Error::TopKTooLarge { k: *k, units });
                }
                let (_, idx) = logits.clone().topk_with_indices(*k, 1);
                (read_i64(idx)?, *k)
            }
        };
        for (pos, &index) in indices.iter().enumerate() {
            if index < 0 || index as usize >= units {
                return Err(Error::TargetOutOfRange {
                    sample: pos / n,
                    column: pos % n,
                    index,
                    units,
                });
            }
        }
        Ok(Resolved {
            indices,
            batch,
            units: n,
        })
    }
}

impl From<Vec<Vec<i64>>> for Targets {
    fn from(rows: Vec<Vec<i64>>) -> Self {
        Targets::from_rows(&rows)
    }
}

/// Targets resolved against a batch: `batch × units` indices, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolved {
    pub indices: Vec<i64>,
    pub batch: usize,
    pub units: usize,
}

impl Resolved {
    /// The indices as a `[B, N]` integer tensor.
    pub fn tensor(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.indices.clone(), [self.batch, self.units]),
            device,
        )
    }

    /// The indices of units `range` of every sample, as a `[B·n, 1]` tensor
    /// with rows ordered sample-major (`b·n + j`).
    pub fn column_slice(&self, range: std::ops::Range<usize>, device: &Device) -> Tensor<2, Int> {
        let n = range.len();
        let data: Vec<i64> = (0..self.batch)
            .flat_map(|b| range.clone().map(move |j| (b, j)))
            .map(|(b, j)| self.indices[b * self.units + j])
            .collect();
        Tensor::from_data(TensorData::new(data, [self.batch * n, 1]), device)
    }
}

/// Reads an integer tensor back as `i64`, whatever the backend's integer type.
pub(crate) fn read_i64<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .map_err(|e| Error::Data(format!("{e:?}")))
}
