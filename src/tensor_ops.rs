//! Rank-generic tensor helpers shared by the probe, the methods and the driver.
//!
//! Tensors of any rank `D` are handled by flattening everything after the
//! first one or two axes, so the same code serves signals, images and volumes.

use burn::prelude::*;

use crate::error::{Error, Result};

/// Errors when any dimension is 0.
pub(crate) fn check_not_empty(what: &'static str, dims: &[usize]) -> Result<()> {
    if dims.contains(&0) {
        return Err(Error::Empty {
            what,
            shape: dims.to_vec(),
        });
    }
    Ok(())
}

/// Errors when the tensor holds NaN or infinite values.
///
/// One reduction in the usual case: a NaN or an infinity anywhere makes the
/// sum NaN or infinite, and the sum of finite values is finite unless it
/// overflows; only a non-finite sum has every element tested. (Burn's
/// `is_finite().all()` is five element-wise passes and a 64-bit integer sum
/// on LibTorch: 155 ms for a batch of 64 images of 224², on which the demo
/// ResNet's whole forward pass takes 239 ms.)
pub(crate) fn check_finite<const D: usize>(what: &'static str, t: &Tensor<D>) -> Result<()> {
    let sum = t.clone().sum().into_scalar::<f32>();
    let finite = sum.is_finite() || t.clone().is_finite().all().into_scalar::<bool>();
    if finite {
        Ok(())
    } else {
        Err(Error::NonFinite { what })
    }
}

/// Reads a float tensor back to the host as `f32`, whatever the backend's
/// float type.
pub(crate) fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Data(format!("{e:?}")))
}

/// The product of `dims`.
pub(crate) fn numel(dims: &[usize]) -> usize {
    dims.iter().product()
}

/// `[A, ...rest]` → `[A, prod(rest)]`.
pub(crate) fn flatten_rest<const D: usize>(t: Tensor<D>) -> Tensor<2> {
    let dims = t.dims();
    t.reshape([dims[0], numel(&dims[1..])])
}

/// `[A, B, ...rest]` → `[A, B, prod(rest)]`.
pub(crate) fn flatten_spatial<const D: usize>(t: Tensor<D>) -> Tensor<3> {
    let dims = t.dims();
    t.reshape([dims[0], dims[1], numel(&dims[2..])])
}

/// `[A, B, P]` → `[A, B, ...spatial]` with `prod(spatial) == P`.
pub(crate) fn unflatten_spatial<const D: usize>(t: Tensor<3>, spatial: &[usize]) -> Tensor<D> {
    let [a, b, _] = t.dims();
    t.reshape(shape_with::<D>(a, b, spatial))
}

/// The rank-`D` shape `[a, b, ...spatial]`.
pub(crate) fn shape_with<const D: usize>(a: usize, b: usize, spatial: &[usize]) -> [usize; D] {
    debug_assert_eq!(spatial.len() + 2, D);
    let mut shape = [0; D];
    shape[0] = a;
    shape[1] = b;
    shape[2..].copy_from_slice(spatial);
    shape
}

/// Repeats every sample `n` times along the batch, sample-major:
/// `[B, ...]` → `[B·n, ...]` with row `b·n + j` a copy of sample `b`.
pub(crate) fn repeat_each<const D: usize>(t: Tensor<D>, n: usize) -> Tensor<D> {
    if n == 1 {
        return t;
    }
    let mut dims = t.dims();
    let batch = dims[0];
    let flat = flatten_rest(t);
    let x = flat.dims()[1];
    let out: Tensor<2> = flat
        .unsqueeze_dim::<3>(1)
        .expand([batch, n, x])
        .reshape([batch * n, x]);
    dims[0] = batch * n;
    out.reshape(dims)
}

/// Concatenates per-unit chunks `[B·n_i, ...]` (each sample-major) into one
/// sample-major tensor `[B·Σn_i, ...]`.
pub(crate) fn cat_units<const D: usize>(chunks: Vec<Tensor<D>>, batch: usize) -> Tensor<D> {
    if chunks.len() == 1 {
        return chunks.into_iter().next().expect("one chunk");
    }
    let mut dims = chunks[0].dims();
    let flat: Vec<Tensor<3>> = chunks
        .into_iter()
        .map(|c| {
            let d = c.dims();
            c.reshape([batch, d[0] / batch, numel(&d[1..])])
        })
        .collect();
    let joined = Tensor::cat(flat, 1);
    let units = joined.dims()[1];
    dims[0] = batch * units;
    joined.reshape(dims)
}

/// `[B·N, K, ...]` (sample-major) → `[B, N, K, P]`.
pub(crate) fn split_units<const D: usize>(t: Tensor<D>, batch: usize) -> Tensor<4> {
    let dims = t.dims();
    t.reshape([batch, dims[0] / batch, dims[1], numel(&dims[2..])])
}

/// One map per row `[B·N, 1, ...spatial]` (sample-major) → `[B, N, ...spatial]`.
pub(crate) fn rows_to_maps<const D: usize>(t: Tensor<D>, batch: usize) -> Tensor<D> {
    let dims = t.dims();
    t.reshape(shape_with::<D>(batch, dims[0] / batch, &dims[2..]))
}
