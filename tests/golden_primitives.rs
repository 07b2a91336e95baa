//! Filters and resizing against keras-explainable / TensorFlow
//! (`BURN_EXPLAINABLE_GOLDEN`, shapes from the files).

mod common;

use burn::prelude::*;
use burn_explainable::{Filter, resize::resize};
use common::{Npz, assert_close, device, tol};

#[test]
fn filters_match() {
    let device = device();
    let g = Npz::golden("filters.npz");
    let x: Tensor<4> = g.channels_first("x", &device);
    for (key, filter) in [
        ("normalize", Filter::Normalize),
        ("positive", Filter::Positive),
        ("positive_normalize", Filter::PositiveNormalize),
        ("absolute_normalize", Filter::AbsoluteNormalize),
    ] {
        let expected = g.channels_first::<4>(key, &device);
        assert_close(key, filter.apply(x.clone()), expected, tol::GOLDEN);
    }
    // keras-explainable's `negative` is `max(x, 0)` (its bug, SPEC part A);
    // ours keeps the negative part, `min(x, 0) = x − max(x, 0)`.
    let positive = g.channels_first::<4>("positive", &device);
    let min_part = x.clone() - positive;
    assert_close(
        "negative",
        Filter::Negative.apply(x.clone()),
        min_part.clone(),
        tol::GOLDEN,
    );
    assert_close(
        "negative_normalize",
        Filter::NegativeNormalize.apply(x),
        Filter::Normalize.apply(min_part.abs()),
        tol::GOLDEN,
    );
}

#[test]
fn resize_matches_tensorflow() {
    let device = device();
    let g = Npz::golden("resize.npz");
    let cases: Vec<String> = g
        .keys()
        .iter()
        .filter_map(|k| k.strip_suffix(".src").map(String::from))
        .collect();
    assert!(!cases.is_empty(), "resize.npz holds no cases");
    for case in &cases {
        let src: Tensor<4> = g.channels_first(&format!("{case}.src"), &device);
        let dst: Tensor<4> = g.channels_first(&format!("{case}.dst"), &device);
        let size = dst.dims()[2..].to_vec();
        assert_close(case, resize(src, &size).unwrap(), dst, tol::GOLDEN);
    }
}
