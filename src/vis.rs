//! Heatmaps on images: colormaps, alpha overlays, PNG files, and ImageNet
//! preprocessing of image files (the `vis` feature, built on the `image`
//! crate).
//!
//! ```
//! use burn::prelude::*;
//! use burn_explainable::vis::{Colormap, overlay, tensor_to_image};
//!
//! let device = Device::flex();
//! let image = tensor_to_image(Tensor::<3>::full([3, 32, 48], 0.5, &device))?;
//! // A map at another resolution is resized to the image (bilinear).
//! let map = Tensor::<2>::from_floats([[0.0, 1.0], [0.5, 0.0]], &device);
//! let out = overlay(&image, map, Colormap::Turbo, 0.5)?;
//! assert_eq!(out.dimensions(), (48, 32));
//! # Ok::<(), burn_explainable::Error>(())
//! ```

use std::path::Path;

use burn::prelude::*;
use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use crate::error::{Error, Result};
use crate::preprocess::imagenet_normalize;
use crate::resize::resize;
use crate::tensor_ops::check_finite;

/// A colormap from `[0, 1]` to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Colormap {
    /// MATLAB's jet (blue → cyan → yellow → red), as OpenCV's `COLORMAP_JET`.
    Jet,
    /// Google's Turbo: jet's look with a smoother lightness profile
    /// (polynomial approximation by its authors).
    Turbo,
    /// Matplotlib's viridis: perceptually uniform, colour-blind safe
    /// (polynomial fit).
    Viridis,
    /// Black to white.
    Gray,
}

impl Colormap {
    /// The colour of `t` (clamped to `[0, 1]`; NaN maps to 0).
    pub fn rgb(self, t: f32) -> [u8; 3] {
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) } as f64;
        let c: [f64; 3] = match self {
            Colormap::Jet => {
                let f = |o: f64| (1.5 - (4.0 * t - o).abs()).clamp(0.0, 1.0);
                [f(3.0), f(2.0), f(1.0)]
            }
            Colormap::Turbo => {
                let (t2, t3) = (t * t, t * t * t);
                let (t4, t5) = (t2 * t2, t2 * t3);
                [
                    0.13572138 + 4.6153926 * t - 42.66032258 * t2 + 132.13108234 * t3
                        - 152.94239396 * t4
                        + 59.28637943 * t5,
                    0.09140261 + 2.19418839 * t + 4.84296658 * t2 - 14.18503333 * t3
                        + 4.27729857 * t4
                        + 2.82956604 * t5,
                    0.1066733 + 12.64194608 * t - 60.58204836 * t2 + 110.36276771 * t3
                        - 89.90310912 * t4
                        + 27.34824973 * t5,
                ]
            }
            Colormap::Viridis => {
                const C: [[f64; 3]; 7] = [
                    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
                    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
                    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
                    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
                    [6.228269936347081, 14.17993336680509, 56.69055260068105],
                    [4.776384997670288, -13.74514537774601, -65.35303263337234],
                    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
                ];
                std::array::from_fn(|ch| C.iter().rev().fold(0.0, |acc, c| acc * t + c[ch]))
            }
            Colormap::Gray => [t, t, t],
        };
        c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
    }
}

fn image_error(path: &Path, source: image::ImageError) -> Error {
    Error::Image {
        path: path.display().to_string(),
        source,
    }
}

/// An RGB image from a `[3, H, W]` tensor with values in `[0, 1]` (clamped).
///
/// # Errors
/// Not 3 channels, empty, or non-finite values.
pub fn tensor_to_image(t: Tensor<3>) -> Result<RgbImage> {
    let [c, h, w] = t.dims();
    if c != 3 || h == 0 || w == 0 {
        return Err(Error::Shape {
            what: "image tensor [3, H, W]",
            expected: vec![3, h.max(1), w.max(1)],
            actual: vec![c, h, w],
        });
    }
    check_finite("image", &t)?;
    let v = t
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Data(format!("{e:?}")))?;
    let plane = h * w;
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        Rgb(std::array::from_fn(|ch| {
            (v[ch * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8
        }))
    }))
}

/// A `[3, H, W]` tensor with values in `[0, 1]` from an RGB image.
pub fn image_to_tensor(image: &RgbImage, device: &Device) -> Tensor<3> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut v = vec![0f32; 3 * h * w];
    for (x, y, p) in image.enumerate_pixels() {
        for ch in 0..3 {
            v[ch * h * w + y as usize * w + x as usize] = p.0[ch] as f32 / 255.0;
        }
    }
    Tensor::from_data(TensorData::new(v, [3, h, w]), device)
}

/// A colour image of `map` (`[H, W]`, values expected in `[0, 1]`).
///
/// # Errors
/// An empty or non-finite map.
pub fn heatmap(map: Tensor<2>, colormap: Colormap) -> Result<RgbImage> {
    let [h, w] = map.dims();
    if h == 0 || w == 0 {
        return Err(Error::Empty {
            what: "heatmap",
            shape: vec![h, w],
        });
    }
    check_finite("map", &map)?;
    let v = map
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Data(format!("{e:?}")))?;
    Ok(RgbImage::from_fn(w as u32, h as u32, |x, y| {
        Rgb(colormap.rgb(v[y as usize * w + x as usize]))
    }))
}

/// `image · (1 − alpha) + colormap(map) · alpha`, with `map` (`[h, w]`,
/// values expected in `[0, 1]`) resized to the image bilinearly.
///
/// # Errors
/// `alpha` outside `[0, 1]`, an empty or non-finite map.
pub fn overlay(
    image: &RgbImage,
    map: Tensor<2>,
    colormap: Colormap,
    alpha: f32,
) -> Result<RgbImage> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Error::config(
            "alpha",
            format!("must lie in [0, 1], got {alpha}"),
        ));
    }
    let [h, w] = map.dims();
    let size = [image.height() as usize, image.width() as usize];
    let map: Tensor<4> = map.reshape([1, 1, h, w]);
    let map = resize(map, &size)?.reshape(size);
    let colors = heatmap(map, colormap)?;
    let mut out = image.clone();
    for (p, c) in out.pixels_mut().zip(colors.pixels()) {
        for ch in 0..3 {
            p.0[ch] = (p.0[ch] as f32 * (1.0 - alpha) + c.0[ch] as f32 * alpha).round() as u8;
        }
    }
    Ok(out)
}

/// Reads an image file (PNG or JPEG) as RGB.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|e| image_error(path, e))
}

/// Writes an image as PNG.
pub fn save_png(image: &RgbImage, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| image_error(path, e))
}

/// torchvision's ImageNet evaluation transform: resize so that the shorter
/// side is `resize_to` (bilinear), centre-crop `crop × crop`, scale to
/// `[0, 1]`, normalise with ImageNet's mean and std. Returns the model
/// input `[1, 3, crop, crop]` and the cropped image for display.
///
/// # Errors
/// `crop` larger than `resize_to`, or zero sizes.
pub fn preprocess_imagenet(
    image: &RgbImage,
    resize_to: u32,
    crop: u32,
    device: &Device,
) -> Result<(Tensor<4>, RgbImage)> {
    let (w, h) = image.dimensions();
    if crop == 0 || crop > resize_to || w == 0 || h == 0 {
        return Err(Error::config(
            "preprocess_imagenet",
            format!(
                "need 0 < crop ≤ resize_to and a non-empty image, got crop {crop}, resize_to {resize_to}, image {w}×{h}"
            ),
        ));
    }
    let scale = resize_to as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(crop),
        ((h as f64 * scale).round() as u32).max(crop),
    );
    let resized = image::imageops::resize(image, nw, nh, FilterType::Triangle);
    let (left, top) = ((nw - crop) / 2, (nh - crop) / 2);
    let cropped = image::imageops::crop_imm(&resized, left, top, crop, crop).to_image();
    let x = imagenet_normalize(image_to_tensor(&cropped, device).unsqueeze_dim(0));
    Ok((x, cropped))
}
