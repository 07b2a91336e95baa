//! Prints one JSON object per line for every benchmark workload: the median
//! time of each method next to the inference forward pass measured in the
//! same process, and their ratio (ratios hold on a noisy machine where
//! absolute times do not).
//!
//! ```text
//! cargo run --release --example bench_report -- [--backend flex|tch|ndarray|wgpu] [--quick]
//!     [--models resnet18,resnet50,vit_b_16,shapes_resnet] [--batches 1,8] [--targets 1,5]
//!     [--reps 5]
//!     [--methods gradcam,saliency,...]
//! ```
//!
//! The full report covers ResNet-18 and ResNet-50 (random weights, inference
//! mode) at batch 1 and 8, 224², one and five top-k targets per image.
//! Score-CAM makes one masked forward per channel and image, so it runs on
//! ResNet-18 at batch 1 only (512 masked forwards; ResNet-50 would need
//! 2048), and on `shapes_resnet` (the trained demo model on its own images,
//! not in the default grid), whose dead channels it scores with one forward
//! pass: its `scorecam_floor` is one masked forward per channel, as without
//! that saving, and a `scorecam_constant_channels` line counts them.
//! `--quick` runs ResNet-18 at 112² with fewer repetitions (under 5 minutes
//! on 2 CPU cores). The last line checks that repeated explanations keep
//! the resident memory flat.

mod support;

use std::time::Instant;

use support::workloads::{
    ABLATION_CHUNK, IG_STEPS, METRIC_STEPS, OCCLUSION_WINDOW, SCORECAM_CHUNK, Setup, Work, applies,
    device,
};

/// Peak resident memory since the last reset, in MiB (Linux; 0 elsewhere).
fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:") / 1024.0
}

fn rss_mb() -> f64 {
    status_kb("VmRSS:") / 1024.0
}

fn status_kb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0.0)
}

/// Resets the peak resident memory (Linux: `5` to `/proc/self/clear_refs`).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Row {
    name: String,
    work: Work,
    times: Vec<f64>,
    peak: f64,
}

fn main() -> Result<(), String> {
    let mut backend = "flex".to_string();
    let mut quick = false;
    let mut models: Option<Vec<String>> = None;
    let mut batches: Option<Vec<usize>> = None;
    let mut units_list: Vec<usize> = vec![1, 5];
    let mut reps: Option<usize> = None;
    let mut only: Option<Vec<String>> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--backend" => backend = it.next().ok_or("--backend needs a value")?,
            "--quick" => quick = true,
            "--models" => {
                let v = it.next().ok_or("--models needs a value")?;
                models = Some(v.split(',').map(String::from).collect());
            }
            "--targets" => {
                let v = it.next().ok_or("--targets needs a value")?;
                let parsed: Result<Vec<usize>, _> = v.split(',').map(str::parse).collect();
                units_list = parsed.map_err(|e| format!("--targets {v}: {e}"))?;
            }
            "--methods" => {
                let v = it.next().ok_or("--methods needs a value")?;
                only = Some(v.split(',').map(String::from).collect());
            }
            "--reps" => {
                let v = it.next().ok_or("--reps needs a value")?;
                reps = Some(v.parse().map_err(|e| format!("--reps {v}: {e}"))?);
            }
            "--batches" => {
                let v = it.next().ok_or("--batches needs a value")?;
                let parsed: Result<Vec<usize>, _> = v.split(',').map(str::parse).collect();
                batches = Some(parsed.map_err(|e| format!("--batches {v}: {e}"))?);
            }
            "--bench" => {} // passed by `cargo bench`-style runners
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let device = device(&backend)?;
    let (size, default_reps) = if quick { (112, 3) } else { (224, 5) };
    let reps = reps.unwrap_or(default_reps).max(1);
    let known: [&'static str; 4] = ["resnet18", "resnet50", "vit_b_16", "shapes_resnet"];
    let models: Vec<&'static str> = match &models {
        None if quick => vec!["resnet18"],
        None => known[..3].to_vec(),
        Some(names) => names
            .iter()
            .map(|n| {
                known
                    .iter()
                    .find(|k| *k == n)
                    .copied()
                    .ok_or(format!("unknown model {n}"))
            })
            .collect::<Result<_, _>>()?,
    };
    let batches = batches.unwrap_or(vec![1, 8]);
    let methods = [
        "cam",
        "gradcam",
        "gradcam++",
        "saliency",
        "fullgrad",
        "smooth4(gradcam)",
        "smooth4(saliency)",
        "smooth4x1(saliency)",
        "smooth4x4(saliency)",
        "tta_flip(gradcam)",
        "tta_flip(saliency)",
        "xgradcam",
        "layercam",
        "hirescam",
        "gradcam_elementwise",
        "eigencam",
        "eigengradcam",
        "inputxgradient",
        "guided_backprop",
        "deconvolution",
        "guided_gradcam",
        "smoothgrad_sq4(saliency)",
        "ig16",
    ];
    for &model in &models {
        for &batch in &batches {
            for &units in &units_list {
                let setup = Setup::new(model, batch, size, units, &device);
                let mut rows: Vec<Row> = Vec::new();
                let mut add = |name: &str, work: Work| {
                    rows.push(Row {
                        name: name.into(),
                        work,
                        times: Vec::new(),
                        peak: 0.0,
                    })
                };
                add("forward", Work::Forward);
                add("backward_to_tap", Work::BackwardToTap);
                add("backward_to_input", Work::BackwardToInput);
                for m in methods {
                    if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == m)) {
                        continue;
                    }
                    if !applies(model, m) {
                        continue;
                    }
                    if units == 5 && m.starts_with("smooth") {
                        continue; // the combinator ratios do not depend on the units
                    }
                    if m == "ig16" && (batch > 1 || units > 1) {
                        continue; // 16 input-gradient passes per unit: batch 1, one unit
                    }
                    add(m, Work::Method(m));
                }
                let wants_scorecam = only
                    .as_ref()
                    .is_none_or(|o| o.iter().any(|x| x == "scorecam"));
                let scorecam_model = model == "resnet18" || model == "shapes_resnet";
                if wants_scorecam && scorecam_model && batch == 1 && units == 1 {
                    let (pairs, constant) = setup.constant_channels();
                    println!(
                        "{{\"check\":\"scorecam_constant_channels\",\"model\":\"{model}\",\"batch\":{batch},\"size\":{size},\"backend\":\"{backend}\",\"pairs\":{pairs},\"constant\":{constant}}}"
                    );
                    add(
                        "scorecam_floor",
                        Work::ScoreCamForwards {
                            chunk: SCORECAM_CHUNK,
                        },
                    );
                    add("scorecam", Work::Method("scorecam"));
                }
                let wants = |m: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == m));
                if model == "resnet18" && batch == 1 && units == 1 {
                    if wants("ablationcam") {
                        let k = setup.tap_channels();
                        add(
                            "ablationcam_floor",
                            Work::TailForwards {
                                rows: k,
                                chunk: ABLATION_CHUNK,
                            },
                        );
                        add("ablationcam", Work::Method("ablationcam"));
                    }
                    if wants("occlusion") {
                        let windows = (size / OCCLUSION_WINDOW).pow(2);
                        add(
                            "occlusion_floor",
                            Work::MaskedForwards {
                                rows: windows * batch,
                                chunk: 32,
                            },
                        );
                        add("occlusion", Work::Method("occlusion"));
                    }
                    if wants("deletion") || wants("insertion") {
                        // Every step but the unperturbed one is a copy per
                        // sample and unit, 32 per pass.
                        add(
                            "metric_floor",
                            Work::MaskedForwards {
                                rows: METRIC_STEPS * batch * units,
                                chunk: 32,
                            },
                        );
                        add("deletion", Work::Metric("deletion"));
                        add("insertion", Work::Metric("insertion"));
                    }
                }
                // Warm-up, then repetitions interleaved across workloads so
                // that drift on a noisy machine hits every row alike.
                for row in &mut rows {
                    reset_peak();
                    setup.run(&row.work);
                    row.peak = peak_rss_mb();
                }
                for _ in 0..reps {
                    for row in &mut rows {
                        let t = Instant::now();
                        setup.run(&row.work);
                        row.times.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
                let forward = median(rows[0].times.clone());
                let medians: Vec<f64> = rows.iter().map(|r| median(r.times.clone())).collect();
                let find = |n: &str| rows.iter().position(|r| r.name == n).map(|i| medians[i]);
                for (row, &m) in rows.iter().zip(&medians) {
                    // The floor each method is held to, where it is not the forward pass.
                    let floor = match row.name.as_str() {
                        // One input-gradient pass per target unit (the
                        // input is replicated once per unit).
                        "saliency" | "fullgrad" | "inputxgradient" | "guided_backprop"
                        | "deconvolution" => find("backward_to_input").map(|b| units as f64 * b),
                        "ig16" => find("backward_to_input").map(|b| (IG_STEPS * units) as f64 * b),
                        "guided_gradcam" => {
                            find("gradcam").and_then(|g| find("guided_backprop").map(|b| g + b))
                        }
                        "ablationcam" => find("ablationcam_floor"),
                        "occlusion" => find("occlusion_floor").map(|f| f + forward),
                        "deletion" | "insertion" => find("metric_floor").map(|f| f + forward),
                        "smoothgrad_sq4(saliency)" => find("saliency").map(|g| 4.0 * g),
                        "scorecam" => find("scorecam_floor").map(|f| f + forward),
                        "smooth4(gradcam)" => find("gradcam").map(|g| 4.0 * g),
                        "smooth4(saliency)" | "smooth4x1(saliency)" | "smooth4x4(saliency)" => {
                            find("saliency").map(|g| 4.0 * g)
                        }
                        "tta_flip(gradcam)" => find("gradcam").map(|g| 2.0 * g),
                        "tta_flip(saliency)" => find("saliency").map(|g| 2.0 * g),
                        _ => None,
                    };
                    let floor_json = floor.map_or(String::new(), |f| {
                        format!(",\"floor_ms\":{f:.3},\"ratio_to_floor\":{:.3}", m / f)
                    });
                    println!(
                        "{{\"method\":\"{}\",\"model\":\"{}\",\"batch\":{},\"targets\":{},\"size\":{},\"backend\":\"{}\",\"median_ms\":{:.3},\"forward_ms\":{:.3},\"ratio_to_forward\":{:.3}{},\"peak_rss_mb\":{:.1},\"reps\":{}}}",
                        row.name,
                        setup.model_name,
                        batch,
                        units,
                        size,
                        backend,
                        m,
                        forward,
                        m / forward,
                        floor_json,
                        row.peak,
                        reps
                    );
                }
            }
        }
    }

    // Memory: 50 explanations in a loop keep the resident set flat.
    let setup = Setup::new("resnet18", 1, size, 1, &device);
    let work = Work::Method("gradcam");
    let mut after = Vec::new();
    for i in 1..=50 {
        setup.run(&work);
        if i == 5 || i == 50 {
            after.push(rss_mb());
        }
    }
    println!(
        "{{\"check\":\"rss_flat\",\"method\":\"gradcam\",\"model\":\"resnet18\",\"calls\":50,\"backend\":\"{}\",\"rss_after_5_mb\":{:.1},\"rss_after_50_mb\":{:.1},\"growth_mb\":{:.1}}}",
        backend,
        after[0],
        after[1],
        after[1] - after[0]
    );
    Ok(())
}
