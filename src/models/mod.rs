//! Ready-made explainable models.

pub mod resnet;
pub mod unet;
