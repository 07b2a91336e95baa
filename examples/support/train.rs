//! A minimal supervised training loop (Adam, cross-entropy), shared by the
//! examples that train their demo model and by the tests that check them.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;

/// Trains `model` (built on an autodiff device) for `steps` Adam steps at
/// learning rate `lr`. `batch(step)` gives the inputs and their labels;
/// `report(step, loss)` is called every 50 steps and at the end.
pub fn train<M: Module, const D: usize>(
    mut model: M,
    steps: usize,
    lr: f64,
    forward: impl Fn(&M, Tensor<D>) -> Tensor<2>,
    mut batch: impl FnMut(usize) -> (Tensor<D>, Vec<usize>),
    mut report: impl FnMut(usize, f32),
) -> M {
    let mut optim = AdamConfig::new().init();
    for step in 0..steps {
        let (x, labels) = batch(step);
        let device = x.device();
        let labels: Vec<i64> = labels.into_iter().map(|l| l as i64).collect();
        let n = labels.len();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device);
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(forward(&model, x), y);
        if step % 50 == 0 || step + 1 == steps {
            report(step, loss.clone().into_scalar::<f32>());
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    model
}

/// The fraction of `logits` rows whose argmax is the label.
pub fn accuracy(logits: Tensor<2>, labels: &[usize]) -> f32 {
    let predicted = logits.argmax(1).into_data().convert::<i64>();
    let predicted = predicted.as_slice::<i64>().expect("i64 data");
    let hits = predicted
        .iter()
        .zip(labels)
        .filter(|&(&p, &l)| p as usize == l)
        .count();
    hits as f32 / labels.len() as f32
}
