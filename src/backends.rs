//! Choosing a Burn backend by name at run time, for command-line tools,
//! test matrices and benchmarks.
//!
//! Burn 0.22 picks the backend through the [`Device`] a tensor lives on;
//! each backend exists only when its Cargo feature is on.
//!
//! ```
//! use burn_explainable::backends;
//!
//! let device = backends::device("flex")?;
//! assert!(backends::available().contains(&"flex"));
//! assert!(backends::device("tpu").is_err());
//! # let _ = device;
//! # Ok::<(), burn_explainable::Error>(())
//! ```

use burn::prelude::*;

use crate::error::{Error, Result};

/// Every backend name [`device`] knows, whether or not this build has it.
pub const NAMES: [&str; 5] = ["flex", "tch", "ndarray", "wgpu", "cuda"];

/// The backend names this build can run (their Cargo features are on).
pub fn available() -> Vec<&'static str> {
    NAMES
        .into_iter()
        .filter(|name| device(name).is_ok())
        .collect()
}

/// The default device of the backend called `name`: `flex` (pure-Rust CPU),
/// `tch` (LibTorch on the CPU: PyTorch's kernels), `ndarray`, `wgpu` (the
/// first adapter: a GPU, or a CPU Vulkan driver), or `cuda` (GPU 0).
///
/// `ndarray` and `tch` are deprecated upstream (Burn 0.22 marks
/// `Device::ndarray()` and `Device::libtorch()` deprecated; a later Burn may
/// remove them); this function constructs them without passing the warning
/// on.
///
/// # Errors
/// [`Error::Backend`] for an unknown name, or a backend whose Cargo
/// feature is off in this build (saying which feature).
pub fn device(name: &str) -> Result<Device> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Ok(Device::libtorch()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0usize)),
        known if NAMES.contains(&known) => Err(Error::Backend {
            name: known.to_string(),
            reason: format!("not in this build: enable the Cargo feature `{known}`"),
        }),
        other => Err(Error::Backend {
            name: other.to_string(),
            reason: format!("unknown; known: {}", NAMES.join(", ")),
        }),
    }
}
