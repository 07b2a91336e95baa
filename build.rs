//! Tells the test suites whether the large reference fixtures (torchvision
//! weights and pytorch-grad-cam / Captum outputs, kept outside the crate) are
//! present: `cfg(fixtures)` when they are. Without them the suites that need
//! them are reported as ignored, with one warning; with
//! `BURN_EXPLAINABLE_REQUIRE_FIXTURES` set a missing folder fails the build,
//! so CI always runs them. Nothing here affects the library itself.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fixtures)");
    println!("cargo::rerun-if-env-changed=BURN_EXPLAINABLE_FIXTURES");
    println!("cargo::rerun-if-env-changed=BURN_EXPLAINABLE_REQUIRE_FIXTURES");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = std::env::var_os("BURN_EXPLAINABLE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../shared/fixtures"));
    if dir.join("resnet").is_dir() {
        println!("cargo::rerun-if-changed={}", dir.display());
        println!("cargo::rustc-cfg=fixtures");
    } else if std::env::var_os("BURN_EXPLAINABLE_REQUIRE_FIXTURES").is_some() {
        panic!(
            "BURN_EXPLAINABLE_REQUIRE_FIXTURES is set but there are no fixtures at {} \
             (set BURN_EXPLAINABLE_FIXTURES)",
            dir.display()
        );
    } else {
        println!(
            "cargo::warning=reference fixtures not found at {}: the ResNet and model parity suites are ignored (set BURN_EXPLAINABLE_FIXTURES)",
            dir.display()
        );
        println!("cargo::rerun-if-changed=build.rs");
    }
}
