//! A model's output of any rank, as the targets see it.

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::tensor_ops::numel;

/// What a model's forward pass returns: a tensor of any rank whose first
/// axis is the batch — logits `[B, L]`, a segmentation map
/// `[B, C, ...spatial]`, an embedding `[B, E]`, a regression output `[B]`.
///
/// Built from any tensor with `.into()`; the [`Targets`](crate::Targets)
/// turn it into one score per sample and unit. Internally it is held
/// flattened to `[B, P]` (`P` the per-sample size, C order) with its shape.
///
/// ```
/// use burn::prelude::*;
/// use burn_explainable::Output;
///
/// let device = Device::flex();
/// let out: Output = Tensor::<4>::zeros([2, 4, 3, 5], &device).into();
/// assert_eq!(out.dims(), [2, 4, 3, 5]);
/// assert_eq!(out.units(), 60);
/// let map: Tensor<4> = out.tensor()?;
/// assert_eq!(map.dims(), [2, 4, 3, 5]);
/// assert!(out.tensor::<2>().is_err()); // wrong rank: an error, not a panic
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Output {
    flat: Tensor<2>,
    dims: Vec<usize>,
}

impl<const R: usize> From<Tensor<R>> for Output {
    fn from(tensor: Tensor<R>) -> Self {
        let dims = tensor.dims().to_vec();
        let rows = dims.first().copied().unwrap_or(1);
        let per = numel(dims.get(1..).unwrap_or(&[]));
        Self {
            flat: tensor.reshape([rows, per]),
            dims,
        }
    }
}

impl Output {
    pub(crate) fn from_flat(flat: Tensor<2>, dims: Vec<usize>) -> Self {
        Self { flat, dims }
    }

    /// The full shape, batch first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The number of rows (samples, or copies of samples).
    pub fn rows(&self) -> usize {
        self.dims[0]
    }

    /// The number of values per row: the units a target index can name
    /// (the per-sample output flattened in C order).
    pub fn units(&self) -> usize {
        numel(&self.dims[1..])
    }

    /// The output flattened to `[rows, units]`.
    pub fn flat(&self) -> Tensor<2> {
        self.flat.clone()
    }

    /// The output at its own rank `R`.
    ///
    /// # Errors
    /// [`Error::Rank`] when the output does not have rank `R`.
    pub fn tensor<const R: usize>(&self) -> Result<Tensor<R>> {
        if self.dims.len() != R {
            return Err(Error::Rank {
                what: "model output",
                expected: R,
                shape: self.dims.clone(),
            });
        }
        let mut shape = [0; R];
        shape.copy_from_slice(&self.dims);
        Ok(self.flat.clone().reshape(shape))
    }

    /// Rows `0, n, 2n, ...` of an output of `B·n` rows: each sample's first copy.
    pub(crate) fn first_copies(&self, n: usize) -> Output {
        if n == 1 {
            return self.clone();
        }
        let (rows, units) = (self.rows(), self.units());
        let batch = rows / n;
        let flat = self
            .flat
            .clone()
            .detach()
            .without_autodiff()
            .reshape([batch, n * units])
            .narrow(1, 0, units);
        let mut dims = self.dims.clone();
        dims[0] = batch;
        Output::from_flat(flat, dims)
    }

    /// The rows at `index` (plain indices into the rows).
    pub(crate) fn select_rows(&self, index: &[usize]) -> Output {
        let device = self.flat.device();
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(
                index.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [index.len()],
            ),
            &device,
        );
        let mut dims = self.dims.clone();
        dims[0] = index.len();
        Output::from_flat(self.flat.clone().select(0, idx), dims)
    }

    /// Detached from any graph, on the plain device.
    pub(crate) fn plain(&self) -> Output {
        Output::from_flat(
            self.flat.clone().detach().without_autodiff(),
            self.dims.clone(),
        )
    }

    /// Whether a graph is being recorded through the output.
    pub(crate) fn is_tracked(&self) -> bool {
        self.flat.is_tracked()
    }
}
