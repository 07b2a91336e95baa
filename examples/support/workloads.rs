//! The benchmark workloads, shared by `benches/resnet.rs` and the
//! `bench_report` example: ResNets with random weights in inference mode,
//! every method and combinator, and the baselines they are measured against.
//! Every workload reads its result back, so the device is synchronised
//! inside the timed region.

use burn::prelude::*;
use burn_explainable::methods::score_cam_masks;
use burn_explainable::metrics::CausalFidelity;
use burn_explainable::models::resnet::{ResNet, ResNetConfig, ResNetTap};
use burn_explainable::models::vit::{Vit, VitConfig, VitTap};
use burn_explainable::{
    AblationCam, Cam, Deconvolution, EigenCam, EigenGradCam, Explainable, Explainer, FullGrad,
    GradCam, GradCamElementWise, GradCamPlusPlus, GuidedBackprop, GuidedGradCam, HiResCam,
    InputXGradient, IntegratedGradients, LayerCam, Occlusion, Probe, Saliency, ScoreCam, Smooth,
    Statistic, Targets, Tta, XGradCam,
};

/// The device of a backend name (`flex`, `ndarray`, `wgpu`, `cuda`), when
/// its Cargo feature is on.
pub fn device(backend: &str) -> Result<Device, String> {
    burn_explainable::backends::device(backend).map_err(|e| e.to_string())
}

/// What is timed.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Inference forward pass (the reference of every ratio).
    Forward,
    /// The probe's primitive: forward, then backward from the scores to the tap.
    BackwardToTap,
    /// Forward and backward to the input, written directly with autodiff
    /// (no parameter gradients).
    BackwardToInput,
    /// `masked_rows` rows through the model in batches of `chunk`: Score-CAM's
    /// floor.
    MaskedForwards { rows: usize, chunk: usize },
    /// Score-CAM's own masked inputs for every channel of the first sample
    /// (constant ones included), after one forward pass for the
    /// activation, through the model in batches of `chunk`: its floor
    /// without the skipping of dead channels.
    ScoreCamForwards { chunk: usize },
    /// `rows` copies of the tap's activation through the layers after the
    /// tap, in batches of `chunk`: Ablation-CAM's floor (after one forward).
    TailForwards { rows: usize, chunk: usize },
    /// An explainer by name (see [`method`]).
    Method(&'static str),
    /// A quality metric by name (`deletion`, `insertion`: [`METRIC_STEPS`]
    /// steps) of a random map per sample and unit.
    Metric(&'static str),
}

/// The explainers by name, on any model. The CAM family explains the
/// setup's tap (`layer4` of a ResNet, the last block's `ln_1` of a ViT).
pub fn method<M: Explainable<4> + 'static>(name: &str) -> Box<dyn Explainer<M, 4>> {
    match name {
        "cam" => Box::new(Cam::new()),
        "gradcam" => Box::new(GradCam::new()),
        "gradcam++" => Box::new(GradCamPlusPlus::new()),
        "scorecam" => Box::new(ScoreCam::new().with_batch_size(SCORECAM_CHUNK)),
        "saliency" => Box::new(Saliency::new()),
        "fullgrad" => Box::new(FullGrad::new()),
        "smooth4(gradcam)" => Box::new(Smooth::new(GradCam::new()).with_repetitions(4)),
        "smooth4(saliency)" => Box::new(Smooth::new(Saliency::new()).with_repetitions(4)),
        "smooth4x1(saliency)" => Box::new(
            Smooth::new(Saliency::new())
                .with_repetitions(4)
                .with_copies_per_pass(1),
        ),
        "smooth4x4(saliency)" => Box::new(
            Smooth::new(Saliency::new())
                .with_repetitions(4)
                .with_copies_per_pass(4),
        ),
        "xgradcam" => Box::new(XGradCam::new()),
        "layercam" => Box::new(LayerCam::new()),
        "hirescam" => Box::new(HiResCam::new()),
        "gradcam_elementwise" => Box::new(GradCamElementWise::new()),
        "eigencam" => Box::new(EigenCam::new()),
        "eigengradcam" => Box::new(EigenGradCam::new()),
        "ablationcam" => Box::new(AblationCam::new().with_batch_size(ABLATION_CHUNK)),
        "inputxgradient" => Box::new(InputXGradient::new()),
        "ig16" => Box::new(IntegratedGradients::new().with_steps(IG_STEPS)),
        "occlusion" => Box::new(Occlusion::new(
            [3, OCCLUSION_WINDOW, OCCLUSION_WINDOW],
            [3, OCCLUSION_WINDOW, OCCLUSION_WINDOW],
        )),
        "guided_backprop" => Box::new(GuidedBackprop::new()),
        "deconvolution" => Box::new(Deconvolution::new()),
        "guided_gradcam" => Box::new(GuidedGradCam::new()),
        "smoothgrad_sq4(saliency)" => Box::new(
            Smooth::new(Saliency::new())
                .with_repetitions(4)
                .with_statistic(Statistic::MeanOfSquares),
        ),
        "tta_flip(gradcam)" => Box::new(Tta::new(GradCam::new()).with_scales(vec![])),
        "tta_flip(saliency)" => Box::new(Tta::new(Saliency::new()).with_scales(vec![])),
        other => panic!("unknown method {other}"),
    }
}

/// Whether a method applies to a model: CAM needs a pooling head and
/// FullGrad bias points, which a ViT has not.
pub fn applies(model: &str, method: &str) -> bool {
    !(model.starts_with("vit")
        && matches!(
            method,
            "cam" | "fullgrad" | "guided_backprop" | "deconvolution" | "guided_gradcam"
        ))
}

/// Ablation-CAM's ablated copies per pass.
pub const ABLATION_CHUNK: usize = 32;
/// Integrated Gradients' steps.
pub const IG_STEPS: usize = 16;
/// Occlusion's window (and stride), in pixels.
pub const OCCLUSION_WINDOW: usize = 32;

/// Deletion's and Insertion's steps.
pub const METRIC_STEPS: usize = 10;

/// Score-CAM's masked inputs per forward pass.
pub const SCORECAM_CHUNK: usize = 64;

/// A probed model of either family.
pub enum Net {
    ResNet(Probe<ResNet, 4>),
    Vit(Probe<Vit, 4>),
}

/// A model, an input batch and the targets.
pub struct Setup {
    pub model_name: &'static str,
    pub net: Net,
    pub x: Tensor<4>,
    pub targets: Targets,
}

impl Setup {
    /// `resnet18`, `resnet50` or `vit_b_16` (ViT-B/16 at `size`²; random
    /// weights, 1000 classes, a normal random batch), or `shapes_resnet`
    /// (the trained demo ResNet on its own demo images): `batch` images of
    /// `size`², `units` top-k targets per image.
    pub fn new(
        model_name: &'static str,
        batch: usize,
        size: usize,
        units: usize,
        device: &Device,
    ) -> Self {
        device.seed(7);
        let net = if model_name == "shapes_resnet" {
            let model = burn_explainable::demo::shapes_resnet(device).expect("embedded demo model");
            Net::ResNet(Probe::new(&model).at(ResNetTap::Layer4))
        } else if model_name.starts_with("vit") {
            let mut config = VitConfig::from_name(model_name, 1000).expect("known ViT");
            config.image_size = size;
            let model = config.init(device).expect("valid ViT configuration");
            let last = model.encoder.layers.len() - 1;
            Net::Vit(Probe::new(&model).at(VitTap::Ln1(last)))
        } else {
            let config = ResNetConfig::from_name(model_name, 1000).expect("known ResNet");
            let model = config.init(device).expect("valid ResNet configuration");
            Net::ResNet(Probe::new(&model).at(ResNetTap::Layer4))
        };
        let x = if model_name == "shapes_resnet" {
            // The images it was trained on: channels dead after its last
            // ReLU stay dead, as on a real model and input.
            let shapes = burn_explainable::demo::shapes(batch, size, 7, device)
                .expect("demo images of at least 32²");
            burn_explainable::preprocess::imagenet_normalize(shapes.images)
        } else {
            Tensor::<4>::random(
                [batch, 3, size, size],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                device,
            )
        };
        Self {
            model_name,
            net,
            x,
            targets: Targets::top_k(units),
        }
    }

    /// Runs `work` once, reading the result back.
    pub fn run(&self, work: &Work) {
        match &self.net {
            Net::ResNet(p) => run_on(p, |x| p.model().forward(x), &self.x, &self.targets, work),
            Net::Vit(p) => run_on(p, |x| p.model().forward(x), &self.x, &self.targets, work),
        }
    }

    /// Channels at the tap (`layer4`).
    pub fn tap_channels(&self) -> usize {
        self.tap_activation(self.x.clone().narrow(0, 0, 1)).dims()[1]
    }

    /// The (sample, channel) pairs of the tap's activation, and how many of
    /// them are constant over the positions (dead after a ReLU): Score-CAM
    /// scores those with one forward pass instead of one each.
    pub fn constant_channels(&self) -> (usize, usize) {
        let a = self.tap_activation(self.x.clone());
        let [b, k, h, w] = a.dims();
        let values = a.into_data().try_to_vec::<f32>().expect("float activation");
        let constant = values
            .chunks(h * w)
            .filter(|c| c.iter().all(|&v| v == c[0]))
            .count();
        (b * k, constant)
    }

    fn tap_activation(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.net {
            Net::ResNet(p) => p.activations(x).unwrap().1,
            Net::Vit(p) => p.activations(x).unwrap().1,
        }
    }
}

/// Runs `work` on one probed model; `forward` is its plain forward pass
/// (for the backward-to-input baseline).
fn run_on<M: Explainable<4> + 'static>(
    probe: &Probe<M, 4>,
    forward: impl Fn(Tensor<4>) -> Tensor<2>,
    x: &Tensor<4>,
    targets: &Targets,
    work: &Work,
) {
    match work {
        Work::Forward => {
            let _ = probe.forward(x.clone()).unwrap().flat().into_data();
        }
        Work::BackwardToTap => {
            let g = probe.tap_gradients(x.clone(), targets, 64).unwrap();
            let _ = g.gradients.into_data();
        }
        Work::BackwardToInput => {
            let x = x.clone().autodiff().require_grad();
            let logits = forward(x.clone());
            let grads = logits.sum().backward();
            let _ = x.grad(&grads).expect("input gradient").into_data();
        }
        Work::MaskedForwards { rows, chunk } => {
            let [_, c, h, w] = x.dims();
            let masked = Tensor::<4>::ones([*chunk, c, h, w], &x.device());
            let mut left = *rows;
            while left > 0 {
                let n = left.min(*chunk);
                let _ = probe
                    .forward(masked.clone().narrow(0, 0, n))
                    .unwrap()
                    .flat()
                    .into_data();
                left -= n;
            }
        }
        Work::ScoreCamForwards { chunk } => {
            let one = x.clone().narrow(0, 0, 1);
            let [_, _, h, w] = one.dims();
            let (_, a) = probe.activations(one.clone()).unwrap();
            let masks = score_cam_masks(a, &[h, w]).unwrap(); // [1, K, H, W]
            let k = masks.dims()[1];
            let masked = one * masks.reshape([k, 1, h, w]); // [K, C, H, W]
            for start in (0..k).step_by(*chunk) {
                let n = (*chunk).min(k - start);
                let _ = probe
                    .forward(masked.clone().narrow(0, start, n))
                    .unwrap()
                    .flat()
                    .into_data();
            }
        }
        Work::TailForwards { rows, chunk } => {
            // One forward of the batch for the activation, as the method.
            let (_, a) = probe.activations(x.clone()).unwrap();
            let copies = a.narrow(0, 0, 1).repeat_dim(0, *chunk);
            let mut left = *rows;
            while left > 0 {
                let n = left.min(*chunk);
                let _ = probe
                    .forward_with_tap(x.clone().narrow(0, 0, 1), copies.clone().narrow(0, 0, n))
                    .unwrap()
                    .flat()
                    .into_data();
                left -= n;
            }
        }
        Work::Metric(name) => {
            let [b, _, h, w] = x.dims();
            let n = targets.units_per_sample().unwrap_or(1);
            let maps = Tensor::<4>::random(
                [b, n, h, w],
                burn::tensor::Distribution::Default,
                &x.device(),
            );
            let metric = match *name {
                "deletion" => CausalFidelity::deletion(),
                "insertion" => CausalFidelity::insertion(),
                other => panic!("unknown metric {other}"),
            };
            let curves = metric
                .with_steps(METRIC_STEPS)
                .evaluate(probe, x.clone(), targets, &maps)
                .unwrap();
            let _ = curves.auc.into_data();
        }
        Work::Method(name) => {
            let e = method::<M>(name)
                .explain(probe, x.clone(), targets)
                .unwrap();
            let _ = e.maps.into_data();
        }
    }
}
