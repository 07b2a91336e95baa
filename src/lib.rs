//! Explainability for [Burn](https://burn.dev) models: class activation maps,
//! gradients and their combinators, with one call shape for every method.
//!
//! # Quick start
//!
//! ```
//! use burn::prelude::*;
//! use burn_explainable::{Pipeline, GradCam, Probe, Targets, testing::TinyNet};
//!
//! let device = Device::flex();
//! let model = TinyNet::new(&device);                    // any model implementing `Explainable`
//! let probe = Probe::new(&model).at(TinyNet::FEATURES); // an inference-mode copy, tapped
//! let images = Tensor::<4>::ones([2, 3, 16, 16], &device);
//!
//! // Grad-CAM of each image's best-scoring class, normalised to [0, 1]
//! // and resized to the input, as keras-explainable's `ke.gradcam` does.
//! let e = Pipeline::new(GradCam::new()).run(&probe, images, &Targets::top_k(1))?;
//! assert_eq!(e.maps.dims(), [2, 1, 16, 16]);
//! assert_eq!(e.scores.dims(), [2, 1]);
//! # Ok::<(), burn_explainable::Error>(())
//! ```
//!
//! # Pieces
//!
//! - [`Explainable`]: the model-side trait: a forward pass that hands its
//!   tap points to a [`Trace`]. [`Split`] does it for models already split
//!   into features and a head.
//! - [`Probe`]: an inference-mode copy of the model with the tap to explain.
//! - [`Explainer`]: every method and combinator, called as
//!   `explain(&probe, input, &targets)`, returning an [`Explanation`] with
//!   scores `[B, N]` and maps `[B, N, ...spatial]`.
//! - [`Targets`]: the score each map explains, computed from the model's
//!   [`Output`] of any rank: a class (per-sample indices `[B, N]`, every
//!   unit, the top-k), a softmax probability, a signed output, a masked sum
//!   of a segmentation map, a similarity to a concept, or your function.
//! - [`metrics`]: explanation quality — Deletion and Insertion, ROAD, the
//!   confidence change of the map-multiplied input (Average Drop, Increase
//!   in Confidence), the pointing game, the cascading randomisation sanity
//!   check — with the peers' conventions.
//! - [`Pipeline`]: batching, post-processing [`filters`] and [`resize`];
//!   [`combinators::Layers`] averages several taps.
//! - [`models::unet`]: a small U-Net; `models::resnet` (feature `resnet`):
//!   torchvision-compatible ResNets that load torchvision checkpoints.
//! - `weights` (feature `pytorch`): PyTorch state dicts into any Burn module.
//! - `vis` (feature `vis`): colormaps, heatmap overlays, PNG files and
//!   ImageNet preprocessing; [`preprocess`]: ImageNet (de)normalisation.
//! - `demo` (feature `demo`): synthetic signals and images with known object
//!   locations, small models for them, and an embedded trained ResNet.
//!
//! # Features
//!
//! None by default: the application chooses its Burn backend, and file
//! formats are opt-in. `flex`, `ndarray`, `wgpu`, `cuda` enable the Burn
//! backend of that name (for [`backends::device`]); `pytorch` the weight
//! loader; `resnet` the ResNet family (with `pytorch`); `vis` image files
//! and overlays (the `image` crate); `demo` the synthetic data and demo
//! models (with `resnet`).
//!
//! Every method works on signals `[B, C, L]`, images `[B, C, H, W]` and
//! volumes `[B, C, D, H, W]`: the input rank is the `D` of
//! [`Explainable<D>`](Explainable).
//!
//! Input ranks are checked by the compiler: a model implementing
//! `Explainable<4>` takes images `[B, C, H, W]`, and a signal does not fit:
//!
//! ```compile_fail
//! # use burn::prelude::*;
//! # use burn_explainable::{Explainer, GradCam, Probe, Targets, testing::TinyNet};
//! # let device = Device::flex();
//! let probe = Probe::new(&TinyNet::new(&device)).at(TinyNet::FEATURES);
//! let signal = Tensor::<3>::ones([1, 3, 8], &device);
//! GradCam::new().explain(&probe, signal, &Targets::top_k(1));
//! ```
//!
//! Burn 0.22 chooses the backend at run time through its `Device`; this
//! crate works on any of them and needs no backend type parameter
//! ([`backends::device`] picks one by name).

#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adapters;
mod attribution;
pub mod backends;
pub mod combinators;
#[cfg(feature = "demo")]
#[cfg_attr(docsrs, doc(cfg(feature = "demo")))]
pub mod demo;
mod error;
mod explainable;
mod explainer;
pub mod filters;
mod linalg;
pub mod methods;
pub mod metrics;
pub mod models;
mod output;
mod pipeline;
pub mod preprocess;
mod probe;
pub mod resize;
mod rng;
mod targets;
mod tensor_ops;
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "vis")]
#[cfg_attr(docsrs, doc(cfg(feature = "vis")))]
pub mod vis;
#[cfg(feature = "pytorch")]
#[cfg_attr(docsrs, doc(cfg(feature = "pytorch")))]
pub mod weights;

/// The README's code, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use adapters::{Features, Split, effective_bias};
pub use attribution::{Attribution, Attributor, ChannelReduction};
pub use combinators::{Noise, Smooth, Statistic, Tta};
pub use error::{Error, Result};
pub use explainable::{Explainable, Trace};
pub use explainer::{Explainer, Explanation, Postprocessing};
pub use filters::Filter;
pub use methods::{
    AblationCam, AttentionRollout, Cam, Deconvolution, EigenCam, EigenGradCam, FullGrad, GradCam,
    GradCamElementWise, GradCamPlusPlus, GradientFilter, GuidedBackprop, GuidedGradCam, HiResCam,
    InputXGradient, IntegratedGradients, LayerCam, Occlusion, Saliency, ScoreCam, XGradCam,
};
pub use output::Output;
pub use pipeline::Pipeline;
pub use probe::{InputGradients, Probe, TapGradients};
pub use resize::Resize;
pub use targets::{ScoreInput, Targets};
