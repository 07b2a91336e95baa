//! Explainers built from any explainer: [`Smooth`] (SmoothGrad) and
//! [`Tta`] (test-time augmentation). They nest in any order.

mod layers;
mod smooth;
mod tta;

pub use layers::Layers;

pub use smooth::{Noise, Smooth, Statistic};
pub use tta::Tta;

use burn::prelude::*;

use crate::explainer::Explanation;

/// The one averaging helper of the combinators: sums the scores and maps of
/// each pass and divides by the number of passes actually run.
pub(crate) struct Mean<const D: usize> {
    scores: Option<Tensor<2>>,
    maps: Option<Tensor<D>>,
    passes: usize,
}

impl<const D: usize> Mean<D> {
    pub fn new() -> Self {
        Self {
            scores: None,
            maps: None,
            passes: 0,
        }
    }

    /// Adds `copies` passes whose scores and maps are already summed.
    pub fn add(&mut self, scores: Tensor<2>, maps: Tensor<D>, copies: usize) {
        self.scores = Some(match self.scores.take() {
            Some(s) => s + scores,
            None => scores,
        });
        self.maps = Some(match self.maps.take() {
            Some(m) => m + maps,
            None => maps,
        });
        self.passes += copies;
    }

    /// The mean over every pass added.
    pub fn finish(self, indices: Tensor<2, Int>) -> Explanation<D> {
        let n = self.passes as f64;
        Explanation {
            scores: self.scores.expect("at least one pass").div_scalar(n),
            indices,
            maps: self.maps.expect("at least one pass").div_scalar(n),
        }
    }
}
