//! Ready-made explainable models.

#[cfg(feature = "resnet")]
#[cfg_attr(docsrs, doc(cfg(feature = "resnet")))]
pub mod resnet;
pub mod unet;
pub mod vit;
