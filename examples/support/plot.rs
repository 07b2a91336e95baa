//! Line charts as PNG, with a built-in 5×7 bitmap font (examples only).

use std::path::Path;

use image::{Rgb, RgbImage};

/// Distinct line colours (Tableau's 10, then darker variants).
pub const COLOURS: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [16, 60, 90],
    [128, 64, 7],
    [22, 80, 22],
    [107, 20, 20],
    [74, 52, 95],
    [70, 43, 38],
    [114, 60, 97],
    [40, 40, 40],
    [94, 95, 17],
    [12, 95, 104],
];

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub colour: [u8; 3],
    pub points: Vec<(f32, f32)>,
}

/// A chart panel: title, axis labels, x and y ranges, lines.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f32, f32),
    pub series: Vec<Series>,
    /// x tick labels at given positions (None: 0, 0.5, 1 of the range).
    pub x_ticks: Option<Vec<(f32, String)>>,
}

const PANEL_W: u32 = 420;
const PANEL_H: u32 = 300;
const LEGEND_W: u32 = 190;
const MARGIN_L: u32 = 56;
const MARGIN_R: u32 = 16;
const MARGIN_T: u32 = 28;
const MARGIN_B: u32 = 44;

/// Draws the panels side by side with one legend (the first panel's series
/// names) on the right, and writes the PNG.
pub fn save_chart(panels: &[Panel], path: &Path) -> Result<(), image::ImageError> {
    let width = PANEL_W * panels.len() as u32 + LEGEND_W;
    let mut img = RgbImage::from_pixel(width, PANEL_H, Rgb([255, 255, 255]));
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut img, i as u32 * PANEL_W, panel);
    }
    if let Some(first) = panels.first() {
        let x = PANEL_W * panels.len() as u32 + 8;
        for (i, s) in first.series.iter().enumerate() {
            let y = MARGIN_T as i32 + 12 * i as i32;
            fill(&mut img, x as i32, y + 2, 14, 3, s.colour);
            text(&mut img, x as i32 + 20, y, &s.name, [0, 0, 0]);
        }
    }
    img.save(path)
}

fn draw_panel(img: &mut RgbImage, left: u32, panel: &Panel) {
    let (x0, x1) = panel.x_range;
    let values = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1));
    let (mut y0, mut y1) = values
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if y1 - y0 < 1e-6 {
        y1 = y0 + 1.0;
    }
    let pad = 0.05 * (y1 - y0);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let (pl, pt) = ((left + MARGIN_L) as i32, MARGIN_T as i32);
    let (pw, ph) = (
        (PANEL_W - MARGIN_L - MARGIN_R) as i32,
        (PANEL_H - MARGIN_T - MARGIN_B) as i32,
    );
    let sx = |x: f32| pl + ((x - x0) / (x1 - x0) * pw as f32).round() as i32;
    let sy = |y: f32| pt + ph - ((y - y0) / (y1 - y0) * ph as f32).round() as i32;
    let grey = [200, 200, 200];
    for k in 0..=4 {
        let y = y0 + (y1 - y0) * k as f32 / 4.0;
        line(img, (pl, sy(y)), (pl + pw, sy(y)), grey, 1);
        let label = format!("{y:.3}");
        text(
            img,
            pl - 6 - 6 * label.len() as i32,
            sy(y) - 3,
            &label,
            [0, 0, 0],
        );
    }
    let ticks = panel.x_ticks.clone().unwrap_or_else(|| {
        (0..=2)
            .map(|k| {
                let x = x0 + (x1 - x0) * k as f32 / 2.0;
                (x, format!("{x:.1}"))
            })
            .collect()
    });
    for (x, label) in &ticks {
        line(img, (sx(*x), pt + ph), (sx(*x), pt + ph + 4), [0, 0, 0], 1);
        text(
            img,
            sx(*x) - 3 * label.len() as i32,
            pt + ph + 8,
            label,
            [0, 0, 0],
        );
    }
    line(img, (pl, pt), (pl, pt + ph), [0, 0, 0], 1);
    line(img, (pl, pt + ph), (pl + pw, pt + ph), [0, 0, 0], 1);
    for s in &panel.series {
        for w in s.points.windows(2) {
            if w[0].1.is_finite() && w[1].1.is_finite() {
                line(
                    img,
                    (sx(w[0].0), sy(w[0].1)),
                    (sx(w[1].0), sy(w[1].1)),
                    s.colour,
                    2,
                );
            }
        }
    }
    let centre = |s: &str| (left + PANEL_W / 2) as i32 - 3 * s.len() as i32;
    text(img, centre(&panel.title), 8, &panel.title, [0, 0, 0]);
    text(
        img,
        centre(&panel.x_label),
        PANEL_H as i32 - 16,
        &panel.x_label,
        [0, 0, 0],
    );
    text(
        img,
        left as i32 + 4,
        MARGIN_T as i32 - 14,
        &panel.y_label,
        [0, 0, 0],
    );
}

fn put(img: &mut RgbImage, x: i32, y: i32, colour: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(colour));
    }
}

fn fill(img: &mut RgbImage, x: i32, y: i32, w: i32, h: i32, colour: [u8; 3]) {
    for dy in 0..h {
        for dx in 0..w {
            put(img, x + dx, y + dy, colour);
        }
    }
}

/// Bresenham's line, `thickness` pixels wide.
fn line(
    img: &mut RgbImage,
    (mut x, mut y): (i32, i32),
    (x1, y1): (i32, i32),
    c: [u8; 3],
    thickness: i32,
) {
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (step_x, step_y) = (if x < x1 { 1 } else { -1 }, if y < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        fill(img, x, y, thickness, thickness, c);
        if x == x1 && y == y1 {
            return;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += step_x;
        }
        if e2 <= dx {
            err += dx;
            y += step_y;
        }
    }
}

/// Writes `s` (upper-cased; unknown characters as boxes) with its top-left
/// corner at `(x, y)`, 6 pixels per character.
pub fn text(img: &mut RgbImage, x: i32, y: i32, s: &str, colour: [u8; 3]) {
    for (i, ch) in s.chars().enumerate() {
        let rows = glyph(ch.to_ascii_uppercase());
        for (r, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0b10000 >> col) != 0 {
                    put(img, x + 6 * i as i32 + col, y + r as i32, colour);
                }
            }
        }
    }
}

/// A 5×7 glyph: one byte per row, bit 4 the leftmost column.
fn glyph(ch: char) -> [u8; 7] {
    match ch {
        'A' => [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'B' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
        ],
        'C' => [
            0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
        ],
        'D' => [
            0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100,
        ],
        'E' => [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
        ],
        'F' => [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'G' => [
            0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
        ],
        'H' => [
            0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
        'I' => [
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        'J' => [
            0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
        ],
        'K' => [
            0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
        ],
        'L' => [
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
        'M' => [
            0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
        ],
        'N' => [
            0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
        ],
        'O' => [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'P' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
        'Q' => [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
        ],
        'R' => [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
        'S' => [
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
        'T' => [
            0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
        'U' => [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
        'V' => [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
        ],
        'W' => [
            0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
        ],
        'X' | '×' => [
            0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
        ],
        'Y' => [
            0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100,
        ],
        'Z' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
        ],
        '0' => [
            0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
        ],
        '1' => [
            0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
        '2' | '²' => [
            0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
        ],
        '3' => [
            0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
        ],
        '4' => [
            0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
        ],
        '5' => [
            0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
        ],
        '6' => [
            0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
        ],
        '7' => [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
        ],
        '8' => [
            0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
        ],
        '9' => [
            0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
        ],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ',' => [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
        '-' | '−' => [0, 0, 0, 0b11111, 0, 0, 0],
        '+' => [0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0],
        '=' => [0, 0, 0b11111, 0, 0b11111, 0, 0],
        '(' => [
            0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010,
        ],
        ')' => [
            0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000,
        ],
        ':' => [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        '/' => [0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0],
        '%' => [
            0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011,
        ],
        ' ' => [0; 7],
        _ => [
            0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111,
        ],
    }
}
