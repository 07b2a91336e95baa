//! Ready-made [`Explainable`] implementations and helpers for model authors.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::prelude::*;

use crate::explainable::{Explainable, Trace};
use crate::output::Output;
use crate::probe::Probe;

/// The single tap point of a [`Split`] model: the output of its feature extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Features;

/// A model already split into a feature extractor and a head, probed at
/// the features with no trait code.
///
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::{Pipeline, GradCam, Probe, Split, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// let probe: Probe<_, 4> = Split::new(&model, TinyNet::features, TinyNet::head)
///     .with_cam_weights(|m| m.fc.weight.val())
///     .probe();
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
/// let e = Pipeline::new(GradCam::new()).run(&probe, x, &Targets::indices([[0]]))?;
/// assert_eq!(e.maps.dims(), [1, 1, 8, 8]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Split<M, const D: usize> {
    model: M,
    features: fn(&M, Tensor<D>) -> Tensor<D>,
    head: fn(&M, Tensor<D>) -> Tensor<2>,
    cam_weights: Option<fn(&M) -> Tensor<2>>,
}

impl<M: Module, const D: usize> Split<M, D> {
    /// An inference-mode copy of `model`, explained through `features` then `head`.
    pub fn new(
        model: &M,
        features: fn(&M, Tensor<D>) -> Tensor<D>,
        head: fn(&M, Tensor<D>) -> Tensor<2>,
    ) -> Self {
        Self {
            model: model.valid(),
            features,
            head,
            cam_weights: None,
        }
    }

    /// The `[K, L]` class weights of a global-average-pooling + linear head,
    /// for CAM (Burn's `Linear::weight`).
    pub fn with_cam_weights(mut self, cam_weights: fn(&M) -> Tensor<2>) -> Self {
        self.cam_weights = Some(cam_weights);
        self
    }

    /// The probe at the features.
    pub fn probe(self) -> Probe<Self, D> {
        Probe::prepared(self).at(Features)
    }
}

impl<M, const D: usize> Explainable<D> for Split<M, D> {
    type Tap = Features;

    fn forward_traced(&self, input: Tensor<D>, trace: &mut Trace<Features, D>) -> Output {
        let a = (self.features)(&self.model, input);
        let a = trace.tap(Features, a);
        (self.head)(&self.model, a).into()
    }

    /// The head sees only the features: a cut.
    fn is_cut(&self, _: Features) -> bool {
        true
    }

    fn cam_weights(&self, _: Features) -> Option<Tensor<2>> {
        self.cam_weights.map(|f| f(&self.model))
    }
}

/// The effective bias of an inference-mode BatchNorm, optionally folded with
/// the bias of the layer before it:
/// `s·b_prev + β − s·μ` with `s = γ / √(σ² + ε)` and the layer's own `ε`.
///
/// This is the bias FullGrad attributes at the BatchNorm output.
#[must_use]
pub fn effective_bias(bn: &BatchNorm, previous_bias: Option<Tensor<1>>) -> Tensor<1> {
    let scale = bn.gamma.val() / bn.running_var.value().add_scalar(bn.epsilon).sqrt();
    let mut bias = bn.beta.val() - scale.clone() * bn.running_mean.value();
    if let Some(b) = previous_bias {
        bias = bias + scale * b;
    }
    bias
}
