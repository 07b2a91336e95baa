//! Ready-made explainable models.

pub mod resnet;
