//! Loading PyTorch state dicts into any Burn module.
//!
//! A `torch.save(model.state_dict(), path)` file (zip `.pth`) or a
//! `.safetensors` file loads into a Burn module whose field names follow the
//! PyTorch module's, with PyTorch's conventions: `nn.Linear` weights are
//! transposed to Burn's `[in, out]`, BatchNorm `weight`/`bias` become
//! `gamma`/`beta`, `num_batches_tracked` buffers are skipped. Keys whose
//! names differ are mapped with [`TorchWeights::remap`] (regular
//! expressions). Every tensor of the module must be in the file and every
//! tensor of the file must be used: a missing, unexpected or mis-shaped
//! tensor is an [`Error::Load`] that names it — a module never loads
//! partially.
//!
//! ```no_run
//! use burn::prelude::*;
//! use burn::nn::{Linear, LinearConfig};
//! use burn_explainable::weights::TorchWeights;
//!
//! #[derive(Module, Debug)]
//! struct Head { fc: Linear }
//!
//! let device = Device::flex();
//! let head = Head { fc: LinearConfig::new(512, 10).init(&device) };
//! // PyTorch keys `classifier.1.weight`, `classifier.1.bias` → Burn `fc.*`.
//! let head = TorchWeights::file("head.pth")
//!     .remap(r"^classifier\.1\.", "fc.")
//!     .load(head)?;
//! # Ok::<(), burn_explainable::Error>(())
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};

use crate::error::{Error, Result};

/// Where the weights come from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A PyTorch state dict to load into a Burn module (see the module docs).
#[derive(Debug, Clone)]
#[must_use]
pub struct TorchWeights {
    source: Source,
    remaps: Vec<(String, String)>,
    /// How a Burn parameter path is spelled in the file, for error messages.
    name: fn(&str) -> String,
}

impl TorchWeights {
    /// Weights from a zip-format `.pth` or a `.safetensors` file (told
    /// apart by content).
    pub fn file(path: impl AsRef<Path>) -> Self {
        Self {
            source: Source::File(path.as_ref().to_path_buf()),
            remaps: Vec::new(),
            name: pytorch_name,
        }
    }

    /// Weights from `.safetensors` bytes held in memory (e.g. embedded with
    /// `include_bytes!`).
    pub fn safetensors_bytes(bytes: Vec<u8>) -> Self {
        Self {
            source: Source::Bytes(bytes),
            remaps: Vec::new(),
            name: pytorch_name,
        }
    }

    /// Renames file keys matching the regular expression `pattern` to
    /// `replacement` (with `$1`-style groups) before they are matched with
    /// the module's parameter paths. Remappings apply in order.
    pub fn remap(mut self, pattern: &str, replacement: &str) -> Self {
        self.remaps
            .push((pattern.to_string(), replacement.to_string()));
        self
    }

    /// Spells Burn parameter paths in error messages with `name` (the
    /// inverse of the remappings, for a model with its own conventions).
    pub(crate) fn with_names(mut self, name: fn(&str) -> String) -> Self {
        self.name = name;
        self
    }

    fn origin(&self) -> String {
        match &self.source {
            Source::File(p) => p.display().to_string(),
            Source::Bytes(_) => "<memory>".to_string(),
        }
    }

    /// Loads the weights into `module` and returns it.
    ///
    /// # Errors
    /// [`Error::Io`] for a file that cannot be read, [`Error::Store`] for
    /// one that is not a readable state dict (truncated, another format),
    /// [`Error::Load`] naming the tensors missing from it, the unexpected
    /// ones (another architecture), or one of the wrong shape.
    pub fn load<M: Module + ModuleSnapshot>(&self, mut module: M) -> Result<M> {
        let origin = self.origin();
        let result = match &self.source {
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| Error::Io {
                    path: origin.clone(),
                    source,
                })?;
                if bytes.starts_with(b"PK\x03\x04") {
                    drop(bytes);
                    let mut store = PytorchStore::from_file(path)
                        .allow_partial(true)
                        .validate(false);
                    for (p, r) in &self.remaps {
                        store = store.with_key_remapping(p, r);
                    }
                    module
                        .load_from(&mut store)
                        .map_err(|e| Error::store(&origin, e))?
                } else {
                    self.load_safetensors(&mut module, bytes)
                        .map_err(|e| Error::store(&origin, e))?
                }
            }
            Source::Bytes(bytes) => self
                .load_safetensors(&mut module, bytes.clone())
                .map_err(|e| Error::store(&origin, e))?,
        };
        self.check_applied(&origin, result)?;
        Ok(module)
    }

    fn load_safetensors<M: ModuleSnapshot>(
        &self,
        module: &mut M,
        bytes: Vec<u8>,
    ) -> std::result::Result<ApplyResult, burn::store::SafetensorsStoreError> {
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .with_from_adapter(PyTorchToBurnAdapter)
            .skip_enum_variants(true)
            .allow_partial(true)
            .validate(false);
        for (p, r) in &self.remaps {
            store = store.with_key_remapping(p, r);
        }
        module.load_from(&mut store)
    }

    fn check_applied(&self, file: &str, r: ApplyResult) -> Result<()> {
        if let Some(e) = r.errors.first() {
            return Err(Error::load(file, e.to_string()));
        }
        if !r.missing.is_empty() {
            let keys: Vec<String> = r.missing.iter().map(|(p, _)| (self.name)(p)).collect();
            return Err(Error::load(
                file,
                format!(
                    "{} tensors missing from the file: {}",
                    keys.len(),
                    some_of(&keys)
                ),
            ));
        }
        let unexpected: Vec<String> = r
            .unused
            .iter()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .map(|k| (self.name)(k))
            .collect();
        if !unexpected.is_empty() {
            return Err(Error::load(
                file,
                format!(
                    "{} unexpected tensors (another architecture?): {}",
                    unexpected.len(),
                    some_of(&unexpected)
                ),
            ));
        }
        Ok(())
    }
}

/// Writes `module`'s weights as a `.safetensors` file in PyTorch's layout
/// (linear weights `[out, in]`, BatchNorm `weight`/`bias`), with the file
/// keys renamed by `remaps` (pattern, replacement) from the Burn paths.
///
/// # Errors
/// [`Error::Store`] naming the file when it cannot be written.
pub fn save_safetensors<M: Module + ModuleSnapshot>(
    module: &M,
    path: impl AsRef<Path>,
    remaps: &[(&str, &str)],
) -> Result<()> {
    let path = path.as_ref();
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true);
    for (p, r) in remaps {
        store = store.with_key_remapping(*p, *r);
    }
    module
        .save_into(&mut store)
        .map_err(|e| Error::store(&path.display().to_string(), e))
}

/// PyTorch's name for a Burn parameter path: BatchNorm `gamma`/`beta` are
/// `weight`/`bias`.
fn pytorch_name(path: &str) -> String {
    match path.rsplit_once('.') {
        Some((m, "gamma")) => format!("{m}.weight"),
        Some((m, "beta")) => format!("{m}.bias"),
        _ => path.to_string(),
    }
}

/// The first few names of a list, and how many more there are.
fn some_of(keys: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = keys[..keys.len().min(SHOWN)].join(", ");
    if keys.len() > SHOWN {
        s.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    s
}
