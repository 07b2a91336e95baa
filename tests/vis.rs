//! Colormaps, overlays, image conversion and ImageNet preprocessing.
#![cfg(feature = "vis")]

mod common;

use burn::prelude::*;
use burn_explainable::Error;
use burn_explainable::preprocess::{IMAGENET_MEAN, IMAGENET_STD};
use burn_explainable::vis::{
    Colormap, heatmap, image_to_tensor, load_image, overlay, preprocess_imagenet, save_png,
    tensor_to_image,
};
use common::{Lcg, device, values};
use image::{Rgb, RgbImage};

fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(&b)
        .all(|(&x, &y)| (x as i32 - y as i32).abs() <= tol)
}

#[test]
fn colormaps_match_their_reference_colours() {
    // matplotlib's viridis: #440154 at 0, #21918c at 0.5, #fde725 at 1.
    assert!(near(Colormap::Viridis.rgb(0.0), [0x44, 0x01, 0x54], 4));
    assert!(near(Colormap::Viridis.rgb(0.5), [0x21, 0x91, 0x8c], 4));
    assert!(near(Colormap::Viridis.rgb(1.0), [0xfd, 0xe7, 0x25], 4));
    // OpenCV's COLORMAP_JET: dark blue, green at the middle, dark red.
    assert_eq!(Colormap::Jet.rgb(0.0), [0, 0, 128]);
    assert_eq!(Colormap::Jet.rgb(0.5), [128, 255, 128]);
    assert_eq!(Colormap::Jet.rgb(1.0), [128, 0, 0]);
    // Turbo's middle is a light green (its published table: 0.5 ≈ (164, 252, 60)
    // for the table, the polynomial is within ~25 of it).
    assert!(
        near(Colormap::Turbo.rgb(0.5), [164, 252, 60], 25),
        "{:?}",
        Colormap::Turbo.rgb(0.5)
    );
    assert_eq!(Colormap::Gray.rgb(1.0), [255, 255, 255]);
    // Out of range and NaN are clamped, never a panic.
    assert_eq!(Colormap::Jet.rgb(7.0), Colormap::Jet.rgb(1.0));
    assert_eq!(Colormap::Jet.rgb(f32::NAN), Colormap::Jet.rgb(0.0));
}

#[test]
fn image_tensor_round_trip() {
    let device = device();
    let t = Lcg(3).tensor([3, 5, 7], 0.0, 1.0, &device);
    let image = tensor_to_image(t.clone()).unwrap();
    assert_eq!(image.dimensions(), (7, 5));
    let (_, back) = values(image_to_tensor(&image, &device));
    let (_, orig) = values(t);
    assert!(
        back.iter()
            .zip(&orig)
            .all(|(a, b)| (a - b).abs() <= 0.5 / 255.0 + 1e-6)
    );

    let err = tensor_to_image(Tensor::<3>::zeros([1, 4, 4], &device));
    assert!(matches!(err, Err(Error::Shape { .. })), "{err:?}");
    let nan = Tensor::<3>::full([3, 2, 2], f32::NAN, &device);
    assert!(matches!(tensor_to_image(nan), Err(Error::NonFinite { .. })));
}

#[test]
fn overlay_blends_the_resized_heatmap() {
    let device = device();
    let image = RgbImage::from_pixel(6, 4, Rgb([10, 200, 30]));
    let map = Tensor::<2>::from_floats([[0.0, 1.0], [1.0, 0.0]], &device);
    assert_eq!(
        overlay(&image, map.clone(), Colormap::Jet, 0.0).unwrap(),
        image
    );
    let full = overlay(&image, map.clone(), Colormap::Jet, 1.0).unwrap();
    // At alpha 1 the overlay is the heatmap of the bilinearly resized map.
    let big: Tensor<4> = map.clone().reshape([1, 1, 2, 2]);
    let big = burn_explainable::resize::resize(big, &[4, 6])
        .unwrap()
        .reshape([4, 6]);
    assert_eq!(full, heatmap(big, Colormap::Jet).unwrap());
    assert!(overlay(&image, map.clone(), Colormap::Jet, 1.5).is_err());
    let nan = Tensor::<2>::full([2, 2], f32::NAN, &device);
    assert!(overlay(&image, nan, Colormap::Jet, 0.5).is_err());
}

#[test]
fn png_round_trip_and_missing_files() {
    let image = RgbImage::from_fn(9, 4, |x, y| Rgb([x as u8 * 20, y as u8 * 50, 7]));
    let path =
        std::env::temp_dir().join(format!("burn-explainable-vis-{}.png", std::process::id()));
    save_png(&image, &path).unwrap();
    assert_eq!(load_image(&path).unwrap(), image);
    std::fs::remove_file(&path).ok();
    let e = load_image(&path);
    assert!(matches!(e, Err(Error::Image { .. })), "{e:?}");
}

#[test]
fn imagenet_preprocessing_resizes_crops_and_normalises() {
    let device = device();
    // A 300×200 image of one colour: shorter side → 256, crop 224.
    let image = RgbImage::from_pixel(300, 200, Rgb([255, 128, 0]));
    let (x, shown) = preprocess_imagenet(&image, 256, 224, &device).unwrap();
    assert_eq!(x.dims(), [1, 3, 224, 224]);
    assert_eq!(shown.dimensions(), (224, 224));
    let (_, v) = values(x);
    for (c, value) in [255.0f32, 128.0, 0.0].iter().enumerate() {
        let expected = (value / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        let got = v[c * 224 * 224 + 100 * 224 + 100];
        assert!(
            (got - expected).abs() < 1e-5,
            "channel {c}: {got} vs {expected}"
        );
    }
    assert!(preprocess_imagenet(&image, 200, 224, &device).is_err());
}
