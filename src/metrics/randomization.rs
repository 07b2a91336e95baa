//! The model-parameter randomisation sanity check.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use crate::error::{Error, Result};
use crate::explainable::Explainable;
use crate::explainer::Explainer;
use crate::probe::Probe;
use crate::targets::Targets;
use crate::tensor_ops::read_f32;

/// The model-parameter randomisation test, cascading: the layers are
/// re-initialised one after the other from the output towards the input,
/// and after each step the maps are compared with the trained model's. A
/// map that stays the same while the model is destroyed does not explain
/// the model.
///
/// Adebayo et al., *Sanity Checks for Saliency Maps*, NeurIPS 2018.
///
/// After step `i` every parameter and buffer under `layers[0..=i]` (module
/// paths such as `fc`, `layer4.1`, `conv1`; `ResNet::cascade` lists a
/// ResNet's) holds its value in the first model `fresh()` returned, a
/// freshly initialised model of the same architecture (its initialisation
/// is the re-initialisation: any Burn module works this way), the others
/// their trained values: each step randomises one more layer and keeps the
/// earlier steps' random values. Seed the device inside `fresh` for
/// reproducible numbers. The top-k units are fixed on the trained model.
/// Per step, sample and unit:
/// - `rank_correlation`: Spearman's rank correlation of the two maps
///   flattened (average ranks for ties, SciPy's `spearmanr`; NaN when a map
///   is constant), of the absolute maps with
///   [`with_absolute(true)`](Self::with_absolute) (the paper reports both);
/// - `ssim` (maps with two spatial axes, at least 7×7): scikit-image's
///   `structural_similarity` with its defaults (7×7 uniform window, sample
///   covariances, `K1 = 0.01`, `K2 = 0.03`, the mean over the windows
///   inside the map), `data_range` the larger `max − min` of the two maps.
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - [`Randomization::rank_correlation`], [`Randomization::ssim`]: `[L, B, N]`
///
/// # Cost
/// The explainer once on the trained model and once per layer on a
/// randomised model, built in a new `fresh()` model (it alone is written:
/// the trained model and the first fresh one are only read).
///
/// # Errors
/// No layer, a layer matching no parameter, a fresh model whose parameters
/// differ in path or shape, and the errors of `fresh` and the explainer.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::metrics::ModelRandomization;
/// use burn_explainable::{Probe, Saliency, Targets, testing::TinyNet};
///
/// let device = Device::flex();
/// let model = TinyNet::new(&device);
/// // The same layers, freshly initialised.
/// let fresh = || Ok(TinyNet::random(&device));
/// let x = Tensor::<4>::random([2, 3, 8, 8], burn::tensor::Distribution::Default, &device);
/// let check = ModelRandomization::new(["fc", "conv2", "conv1"]);
/// let r = check.evaluate(&Probe::new(&model), fresh, &Saliency::new(), x, &Targets::top_k(1))?;
/// assert_eq!(r.rank_correlation.dims(), [3, 2, 1]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct ModelRandomization {
    /// The module paths randomised in turn, from the output towards the input.
    pub layers: Vec<String>,
    /// Compare the maps' absolute values (default `false`).
    pub absolute: bool,
}

/// A [`ModelRandomization`] result.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Randomization {
    /// The layers randomised, axis 0 of the results (cumulative).
    pub layers: Vec<String>,
    /// Spearman's rank correlation with the trained model's maps `[L, B, N]`.
    pub rank_correlation: Tensor<3>,
    /// SSIM with the trained model's maps `[L, B, N]`, for maps with two
    /// spatial axes of at least 7 pixels.
    pub ssim: Option<Tensor<3>>,
}

impl ModelRandomization {
    /// Randomises `layers` (module paths) in this order.
    pub fn new<S: Into<String>>(layers: impl IntoIterator<Item = S>) -> Self {
        Self {
            layers: layers.into_iter().map(Into::into).collect(),
            absolute: false,
        }
    }

    /// Compares the maps' absolute values.
    pub fn with_absolute(mut self, absolute: bool) -> Self {
        self.absolute = absolute;
        self
    }

    /// The similarity of `explainer`'s maps on the probed model and on its
    /// cascade of randomised copies.
    ///
    /// # Errors
    /// See the type's documentation.
    pub fn evaluate<M, E, const D: usize>(
        &self,
        probe: &Probe<M, D>,
        fresh: impl Fn() -> Result<M>,
        explainer: &E,
        input: Tensor<D>,
        targets: &Targets,
    ) -> Result<Randomization>
    where
        M: Explainable<D> + Module,
        E: Explainer<M, D>,
    {
        if self.layers.is_empty() {
            return Err(Error::config(
                "layers",
                "need at least one layer to randomise",
            ));
        }
        let trained = explainer.explain(probe, input.clone(), targets)?;
        let fixed = targets.fixed(&trained.indices)?;
        let dims = trained.maps.dims();
        let (batch, units) = (dims[0], dims[1]);
        let spatial = dims[2..].to_vec();
        let pixels: usize = spatial.iter().product();
        let magnitude = |v: Vec<f32>| -> Vec<f32> {
            if self.absolute {
                v.into_iter().map(f32::abs).collect()
            } else {
                v
            }
        };
        let reference = magnitude(read_f32(trained.maps)?);
        let with_ssim = spatial.len() == 2 && spatial.iter().all(|&s| s >= SSIM_WINDOW);
        let template = fresh()?;
        let (mut correlation, mut ssim) = (Vec::new(), Vec::new());
        for step in 1..=self.layers.len() {
            let model = randomized(probe.model(), &template, fresh()?, &self.layers[..step])?;
            let mut copy = Probe::new(&model);
            if let Some(tap) = probe.tap() {
                copy = copy.at(tap);
            }
            let maps = magnitude(read_f32(
                explainer.explain(&copy, input.clone(), &fixed)?.maps,
            )?);
            for (a, b) in reference
                .chunks_exact(pixels)
                .zip(maps.chunks_exact(pixels))
            {
                correlation.push(spearman(a, b) as f32);
                if with_ssim {
                    ssim.push(structural_similarity(a, b, [spatial[0], spatial[1]]) as f32);
                }
            }
        }
        let device = input.device();
        let shape = [self.layers.len(), batch, units];
        Ok(Randomization {
            layers: self.layers.clone(),
            rank_correlation: Tensor::from_data(TensorData::new(correlation, shape), &device),
            ssim: with_ssim.then(|| Tensor::from_data(TensorData::new(ssim, shape), &device)),
        })
    }
}

/// Whether `path` is `layer` or lies under it.
fn under(path: &str, layer: &str) -> bool {
    path.strip_prefix(layer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// A model holding `template`'s parameters and buffers under `randomised`
/// and `trained`'s everywhere else, built in `container` (a model of the
/// same architecture that nobody else holds).
///
/// Both sources are only read: Burn's running statistics (BatchNorm's) are
/// shared between a module and its clones, so writing into a clone of the
/// user's model would change the user's model.
///
/// # Errors
/// A layer under which no parameter lies, or parameters that differ in
/// path or shape between the models.
fn randomized<M: Module>(
    trained: &M,
    template: &M,
    container: M,
    randomised: &[String],
) -> Result<M> {
    let mut collect = Collect {
        path: Vec::new(),
        randomised,
        take_randomised: false,
        values: HashMap::new(),
        seen: vec![false; randomised.len()],
    };
    trained.visit(&mut collect);
    if let Some(i) = collect.seen.iter().position(|&seen| !seen) {
        return Err(Error::config(
            "layers",
            format!(
                "no parameter lies under {:?} (a module path such as `fc` or `layer4.1`)",
                randomised[i]
            ),
        ));
    }
    collect.take_randomised = true;
    template.visit(&mut collect);
    let mut replace = Replace {
        path: Vec::new(),
        values: collect.values,
        error: None,
    };
    let model = container.map(&mut replace);
    if let Some(e) = replace.error {
        return Err(e);
    }
    if let Some(path) = replace.values.keys().next() {
        return Err(Error::config(
            "fresh model",
            format!("has no parameter {path} (it must have the trained model's architecture)"),
        ));
    }
    Ok(model)
}

/// Collects the parameters outside the randomised layers (or, with
/// `take_randomised`, under them), flattened, with their shapes.
struct Collect<'a> {
    path: Vec<String>,
    randomised: &'a [String],
    take_randomised: bool,
    values: HashMap<String, (Tensor<1>, Vec<usize>)>,
    /// Whether some parameter lies under each randomised layer.
    seen: Vec<bool>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        let mut randomised = false;
        for (seen, layer) in self.seen.iter_mut().zip(self.randomised) {
            if under(&path, layer) {
                *seen = true;
                randomised = true;
            }
        }
        if randomised == self.take_randomised {
            let value = param.val();
            let dims = value.dims().to_vec();
            let len: usize = dims.iter().product();
            self.values.insert(path, (value.reshape([len]), dims));
        }
    }
}

/// Puts the collected parameters into the container.
struct Replace {
    path: Vec<String>,
    values: HashMap<String, (Tensor<1>, Vec<usize>)>,
    error: Option<Error>,
}

impl ModuleMapper for Replace {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some((value, dims)) = self.values.remove(&path) else {
            return param;
        };
        let own = param.val().dims();
        if dims != own {
            self.error.get_or_insert(Error::Shape {
                what: "fresh model parameter vs the trained one (the architectures must match)",
                expected: dims,
                actual: own.to_vec(),
            });
            return param;
        }
        param.map(|_| value.reshape(own))
    }
}

/// Average ranks (1-based), ties sharing the mean of their positions.
fn average_ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rank correlation (NaN when either side is constant).
fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

/// scikit-image's SSIM window.
const SSIM_WINDOW: usize = 7;

/// scikit-image's `structural_similarity(a, b, data_range=R)` with its
/// defaults, `R` the larger `max − min` of the two maps (1 when both are
/// constant), for `[h, w]` maps of at least 7×7.
fn structural_similarity(a: &[f32], b: &[f32], [h, w]: [usize; 2]) -> f64 {
    let range = |v: &[f32]| {
        let (lo, hi) = v
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        f64::from(hi - lo)
    };
    let mut r = range(a).max(range(b));
    if r == 0.0 {
        r = 1.0;
    }
    let (c1, c2) = ((0.01 * r).powi(2), (0.03 * r).powi(2));
    let k = SSIM_WINDOW;
    let np = (k * k) as f64;
    let cov_norm = np / (np - 1.0);
    let mut total = 0.0;
    let mut count = 0usize;
    for top in 0..=h - k {
        for left in 0..=w - k {
            let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for row in top..top + k {
                for col in left..left + k {
                    let (x, y) = (f64::from(a[row * w + col]), f64::from(b[row * w + col]));
                    sx += x;
                    sy += y;
                    sxx += x * x;
                    syy += y * y;
                    sxy += x * y;
                }
            }
            let (ux, uy) = (sx / np, sy / np);
            let vx = cov_norm * (sxx / np - ux * ux);
            let vy = cov_norm * (syy / np - uy * uy);
            let vxy = cov_norm * (sxy / np - ux * uy);
            total += ((2.0 * ux * uy + c1) * (2.0 * vxy + c2))
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            count += 1;
        }
    }
    total / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn spearman_of_monotone_maps_is_one() {
        let a = [0.1, 0.5, 0.2, 0.9];
        let b = [1.0, 7.0, 2.0, 30.0];
        assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
        let reversed: Vec<f32> = a.iter().map(|v| -v).collect();
        assert!((spearman(&a, &reversed) + 1.0).abs() < 1e-12);
        assert!(spearman(&a, &[1.0; 4]).is_nan());
    }

    #[test]
    fn ssim_of_a_map_with_itself_is_one() {
        let a: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 / 17.0).collect();
        assert!((structural_similarity(&a, &a, [10, 10]) - 1.0).abs() < 1e-12);
        let b: Vec<f32> = a.iter().map(|v| 1.0 - v).collect();
        assert!(structural_similarity(&a, &b, [10, 10]) < 0.0);
    }

    #[test]
    fn paths_match_whole_segments() {
        assert!(under("layer4.1.Basic.conv1.weight", "layer4.1"));
        assert!(under("fc", "fc"));
        assert!(!under("layer4.10.conv1.weight", "layer4.1"));
        assert!(!under("fc2.weight", "fc"));
    }
}
