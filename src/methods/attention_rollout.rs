//! Attention rollout.

use burn::prelude::*;

use crate::error::Error;
use crate::explainable::Explainable;
use crate::explainer::{Explainer, Explanation, Postprocessing};
use crate::filters::Filter;
use crate::probe::Probe;
use crate::targets::Targets;

/// How the heads of a layer are fused before the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeadFusion {
    /// The mean over heads (Abnar & Zuidema).
    Mean,
    /// The maximum over heads.
    Max,
    /// The minimum over heads.
    Min,
}

/// Attention rollout: how much each input token flows into the class token
/// through the layers' attention, with the residual connections counted.
///
/// Abnar & Zuidema, *Quantifying Attention Flow in Transformers*, ACL 2020.
///
/// For each layer `l` (attention weights `A_l`, `[B, heads, S, S]`, from
/// [`Trace::attention`](crate::Trace::attention)):
/// `Ā_l = fuse_heads(A_l)` (mean by default), `Â_l = Ā_l + I`, rows
/// renormalised to sum to 1 (`= (Ā_l + I)/2` for the mean), and
/// `R = Â_L ⋯ Â_2 Â_1` (later layers on the left). The map is the class
/// token's row of `R` over the grid tokens, `R[b, 0, prefix..]` folded to
/// the grid, not normalised. It does not depend on the target: every unit of
/// a sample gets the same map (the scores are still the targets').
///
/// # Shapes
/// - input: `[B, C, ...spatial]`
/// - maps: `[B, N, ...grid]`, at the token grid's resolution
///
/// # Cost
/// One forward pass without autodiff, then `L` products of `[S, S]`
/// matrices per sample.
///
/// # Errors
/// A model that reports no attention weights, weights that are not square
/// or not of one size across layers, a grid that does not fit the tokens,
/// and the input and target errors of every method.
///
/// # Example
/// ```
/// # use burn::prelude::*;
/// use burn_explainable::models::vit::VitConfig;
/// use burn_explainable::{AttentionRollout, Explainer, Probe, Targets};
///
/// let device = Device::flex();
/// let vit = VitConfig::new(32, 8, 2, 2, 16, 32, 5).init(&device)?;
/// let e = AttentionRollout::new(vec![4, 4])
///     .explain(&Probe::new(&vit), Tensor::<4>::ones([1, 3, 32, 32], &device), &Targets::top_k(2))?;
/// assert_eq!(e.maps.dims(), [1, 2, 4, 4]);
/// # Ok::<(), burn_explainable::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct AttentionRollout {
    /// The token grid (`D − 2` sizes), row-major after the prefix tokens.
    pub grid: Vec<usize>,
    /// Tokens before the grid: the class token at index 0, registers.
    pub prefix: usize,
    /// How heads are fused.
    pub head_fusion: HeadFusion,
}

impl AttentionRollout {
    /// The rollout onto `grid` with one class token and mean head fusion.
    pub fn new(grid: Vec<usize>) -> Self {
        Self {
            grid,
            prefix: 1,
            head_fusion: HeadFusion::Mean,
        }
    }

    /// Sets the number of tokens before the grid (≥ 1: the class token is the first).
    pub fn with_prefix(mut self, prefix: usize) -> Self {
        self.prefix = prefix;
        self
    }

    /// Sets the head fusion.
    pub fn with_head_fusion(mut self, head_fusion: HeadFusion) -> Self {
        self.head_fusion = head_fusion;
        self
    }
}

/// The rollout matrices `R = Â_L ⋯ Â_1`, `[B, S, S]`, of per-layer
/// attention weights `[B, heads, S, S]`.
///
/// # Errors
/// No layer, or weights that are not square or differ in size.
pub fn rollout_matrix(attention: &[Tensor<4>], fusion: HeadFusion) -> crate::Result<Tensor<3>> {
    let first = attention.first().ok_or(Error::NoAttention)?.dims();
    let [batch, _, s, _] = first;
    let mut rollout: Option<Tensor<3>> = None;
    for a in attention {
        let dims = a.dims();
        if dims[0] != batch || dims[2] != s || dims[3] != s {
            return Err(Error::Shape {
                what: "attention weights [B, heads, S, S], the same for every layer",
                expected: vec![batch, dims[1], s, s],
                actual: dims.to_vec(),
            });
        }
        let fused: Tensor<3> = match fusion {
            HeadFusion::Mean => a.clone().mean_dim(1),
            HeadFusion::Max => a.clone().max_dim(1),
            HeadFusion::Min => a.clone().min_dim(1),
        }
        .reshape([batch, s, s]);
        let eye = Tensor::<2>::eye(s, &fused.device()).unsqueeze_dim::<3>(0);
        let hat = fused + eye;
        let hat = hat.clone() / hat.sum_dim(2);
        rollout = Some(match rollout {
            None => hat,
            Some(r) => hat.matmul(r),
        });
    }
    Ok(rollout.expect("at least one layer"))
}

impl<M: Explainable<D>, const D: usize> Explainer<M, D> for AttentionRollout {
    fn explain(
        &self,
        probe: &Probe<M, D>,
        input: Tensor<D>,
        targets: &Targets,
    ) -> crate::Result<Explanation<D>> {
        let cells: usize = self.grid.iter().product();
        if self.grid.len() + 2 != D || self.prefix == 0 {
            return Err(Error::config(
                "attention rollout grid",
                format!(
                    "needs {} grid sizes after at least one prefix token, got {:?} after {}",
                    D - 2,
                    self.grid,
                    self.prefix
                ),
            ));
        }
        let (output, attention) = probe.attention_weights(input)?;
        let resolved = targets.resolve(&output)?;
        let r = rollout_matrix(&attention, self.head_fusion)?;
        let [batch, s, _] = r.dims();
        if self.prefix + cells != s {
            return Err(Error::Shape {
                what: "attention rollout: prefix + grid tokens vs the attention's tokens",
                expected: vec![s],
                actual: vec![self.prefix + cells],
            });
        }
        let row = r.narrow(1, 0, 1).narrow(2, self.prefix, cells); // [B, 1, T]
        let n = resolved.units;
        let mut shape = [0; D];
        shape[0] = batch;
        shape[1] = n;
        shape[2..].copy_from_slice(&self.grid);
        let maps = row.expand([batch, n, cells]).reshape(shape);
        Ok(Explanation::new(
            resolved.sample_scores(&output)?,
            resolved.tensor(&maps.device()),
            maps,
        ))
    }

    /// Normalised (rollout maps are positive) and resized to the input.
    fn postprocessing(&self) -> Postprocessing {
        Postprocessing::new(Some(Filter::Normalize), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_layer_of_uniform_attention_is_half_identity_half_uniform() {
        let device = Device::flex();
        // One sample, two heads, 3 tokens, every row uniform.
        let a = Tensor::<4>::full([1, 2, 3, 3], 1.0 / 3.0, &device);
        let r: Vec<f32> = rollout_matrix(&[a], HeadFusion::Mean)
            .unwrap()
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        for (i, v) in r.iter().enumerate() {
            let expected = if i / 3 == i % 3 {
                0.5 + 1.0 / 6.0
            } else {
                1.0 / 6.0
            };
            assert!((v - expected).abs() < 1e-6, "{r:?}");
        }
    }

    #[test]
    fn heads_fuse_by_mean_max_or_min_and_layers_multiply_later_on_the_left() {
        let device = Device::flex();
        // Two tokens, two heads: head 0 attends to itself, head 1 to the
        // other token.
        let one = Tensor::<4>::from_floats(
            [[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]],
            &device,
        );
        let read =
            |t: Tensor<3>| -> Vec<f32> { t.into_data().convert::<f32>().try_into_vec().unwrap() };
        // Mean: [[.5, .5], [.5, .5]] + I, renormalised: [[.75, .25], [.25, .75]].
        let mean = read(rollout_matrix(std::slice::from_ref(&one), HeadFusion::Mean).unwrap());
        // Max: all ones + I → [[2, 1], [1, 2]] / 3. Min: zeros + I → I.
        let max = read(rollout_matrix(std::slice::from_ref(&one), HeadFusion::Max).unwrap());
        let min = read(rollout_matrix(std::slice::from_ref(&one), HeadFusion::Min).unwrap());
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&mean, &[0.75, 0.25, 0.25, 0.75]), "{mean:?}");
        assert!(
            close(&max, &[2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0]),
            "{max:?}"
        );
        assert!(close(&min, &[1.0, 0.0, 0.0, 1.0]), "{min:?}");
        // Two layers: the second (all attention on token 1) left of the first.
        let to_second = Tensor::<4>::from_floats([[[[0.0, 1.0], [0.0, 1.0]]]], &device);
        let two = read(rollout_matrix(&[one, to_second], HeadFusion::Mean).unwrap());
        // Â_2 = [[.5, .5], [0, 1]]; R = Â_2 · Â_1 = [[.5, .5], [.25, .75]].
        assert!(close(&two, &[0.5, 0.5, 0.25, 0.75]), "{two:?}");
    }
}
