//! Code shared by the examples.
#![allow(dead_code)]

#[cfg(feature = "vis")]
pub mod plot;
pub mod train;
#[cfg(feature = "resnet")]
pub mod workloads;

/// Draws a progress bar on stderr (examples only; the library never prints).
pub fn progress(done: usize, total: usize) {
    let total = total.max(1);
    let done = done.min(total);
    let width = 30;
    let filled = done * width / total;
    eprint!(
        "\r  [{}{}] {:>3}%",
        "#".repeat(filled),
        ".".repeat(width - filled),
        done * 100 / total
    );
}
