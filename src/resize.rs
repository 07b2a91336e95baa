//! Resizing maps and inputs of any spatial rank.
//!
//! Linear interpolation with half-pixel centres and no antialiasing
//! (`tf.image.resize(..., "bilinear")`, PyTorch's
//! `interpolate(..., align_corners=False)`), separably along each spatial
//! axis: linear for signals, bilinear for images, trilinear for volumes.

use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

use crate::error::{Error, Result};
use crate::tensor_ops::numel;

/// How the [`Pipeline`](crate::Pipeline) driver resizes maps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resize {
    /// Keep the method's resolution.
    None,
    /// Resize to the input's spatial size.
    Input,
    /// Resize to the given spatial size (one entry per spatial axis).
    To(Vec<usize>),
}

fn bilinear(t: Tensor<4>, size: [usize; 2], align_corners: bool) -> Tensor<4> {
    if t.dims()[2..] == size {
        return t;
    }
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(align_corners)
        .with_output_size(size);
    interpolate(t, options)
}

/// Resizes `[A, B, ...spatial]` to `[A, B, ...size]`.
///
/// # Errors
/// `size` has a length other than `D − 2`, or a zero entry, or `t` is empty.
pub fn resize<const D: usize>(t: Tensor<D>, size: &[usize]) -> Result<Tensor<D>> {
    resize_with(t, size, false)
}

/// Resizes `[A, B, ...spatial]` to `[A, B, ...size]` with the corner
/// samples aligned (`src = dst · (in − 1) / (out − 1)`: PyTorch's
/// `align_corners=True`, `nn.UpsamplingBilinear2d`), which pytorch-grad-cam's
/// Score-CAM uses for its masks.
///
/// # Errors
/// As [`resize`].
pub fn resize_align_corners<const D: usize>(t: Tensor<D>, size: &[usize]) -> Result<Tensor<D>> {
    resize_with(t, size, true)
}

fn resize_with<const D: usize>(t: Tensor<D>, size: &[usize], align: bool) -> Result<Tensor<D>> {
    let dims = t.dims();
    if D < 3 || size.len() != D - 2 {
        return Err(Error::Shape {
            what: "resize size (one entry per spatial axis)",
            expected: dims.get(2..).unwrap_or(&[]).to_vec(),
            actual: size.to_vec(),
        });
    }
    if size.contains(&0) || dims.contains(&0) {
        return Err(Error::Empty {
            what: "resize input or size",
            shape: [&dims[..], size].concat(),
        });
    }
    if dims[2..] == *size {
        return Ok(t);
    }
    let (a, b) = (dims[0], dims[1]);
    let out: Tensor<4> = match D {
        3 => bilinear(t.reshape([a, b, 1, dims[2]]), [1, size[0]], align),
        4 => bilinear(
            t.reshape([a, b, dims[2], dims[3]]),
            [size[0], size[1]],
            align,
        ),
        _ => {
            // The last two axes bilinearly, then every leading spatial axis
            // in turn, as the row axis of a bilinear pass whose column axis
            // holds everything after it (resized to itself: the identity).
            let lead = &dims[2..D - 2];
            let planes = a * b * numel(lead);
            let mut cur: Tensor<4> = bilinear(
                t.reshape([planes, 1, dims[D - 2], dims[D - 1]]),
                [size[D - 4], size[D - 3]],
                align,
            );
            let mut shape: Vec<usize> = dims[..D - 2].to_vec();
            shape.extend_from_slice(&size[D - 4..]);
            for axis in (2..D - 2).rev() {
                let before = numel(&shape[..axis]);
                let after = numel(&shape[axis + 1..]);
                let r = bilinear(
                    cur.reshape([before, 1, shape[axis], after]),
                    [size[axis - 2], after],
                    align,
                );
                shape[axis] = size[axis - 2];
                cur = r;
            }
            cur
        }
    };
    let mut shape = [0; D];
    shape[0] = a;
    shape[1] = b;
    shape[2..].copy_from_slice(size);
    Ok(out.reshape(shape))
}
