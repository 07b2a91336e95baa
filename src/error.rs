//! The crate's error type.

/// A specialised `Result` for explanations.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while explaining a model.
///
/// Every variant carries the context needed to find the problem: the shapes
/// involved, the offending index, or the tap point by name.
///
/// Errors from I/O, image decoding and weight files keep their cause, which
/// [`std::error::Error::source`] returns; no variant repeats its source's
/// message in its own.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor has no elements along a dimension that must not be empty.
    #[error("{what} has an empty dimension: shape {shape:?}")]
    Empty {
        /// What was empty (`"input"`, `"targets"`, ...).
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// A tensor has the wrong rank.
    #[error("{what} must have rank {expected}, got shape {shape:?}")]
    Rank {
        /// What had the wrong rank.
        what: &'static str,
        /// The rank that was expected.
        expected: usize,
        /// The shape that was given.
        shape: Vec<usize>,
    },

    /// Two tensors disagree on a shape.
    #[error("{what}: expected shape {expected:?}, got {actual:?}")]
    Shape {
        /// What was compared.
        what: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The actual shape.
        actual: Vec<usize>,
    },

    /// The targets name a different number of samples than the input holds.
    #[error("targets have {targets} rows but the input batch has {input} samples")]
    BatchMismatch {
        /// Samples in the input.
        input: usize,
        /// Rows in the targets.
        targets: usize,
    },

    /// A target index is negative or not below the number of model outputs.
    #[error("target index {index} of sample {sample} (column {column}) is outside 0..{units}")]
    TargetOutOfRange {
        /// The sample (row of the targets).
        sample: usize,
        /// The column of the targets.
        column: usize,
        /// The offending index.
        index: i64,
        /// The number of units the model outputs.
        units: usize,
    },

    /// More top-k units were requested than the model outputs.
    #[error("top-{k} requested but the model outputs only {units} units")]
    TopKTooLarge {
        /// Requested k.
        k: usize,
        /// Units the model outputs.
        units: usize,
    },

    /// The model cannot take an input of this shape
    /// (see [`Explainable::check_input`](crate::Explainable::check_input)).
    #[error("the model rejects an input of shape {shape:?}: {reason}")]
    InputRejected {
        /// The input's shape.
        shape: Vec<usize>,
        /// The model's reason.
        reason: String,
    },

    /// The model's forward (or backward) pass panicked on an input of this
    /// shape: usually a shape its layers cannot take. Implement
    /// [`Explainable::check_input`](crate::Explainable::check_input) to
    /// reject such inputs with your own message.
    #[error("the model failed on an input of shape {shape:?}: {message}")]
    ModelPanicked {
        /// The shape of the input the pass ran on.
        shape: Vec<usize>,
        /// The panic's message.
        message: String,
    },

    /// The targets cannot be used as given (ragged rows, a wrong shape, a
    /// score that does not apply to them).
    #[error("invalid targets: {reason}")]
    InvalidTargets {
        /// What is wrong.
        reason: String,
    },

    /// The model reported a different number of bias points in two passes.
    #[error("the forward pass reported {first} bias points, then {now}")]
    BiasPointsChanged {
        /// Bias points in the first pass.
        first: usize,
        /// Bias points in a later pass.
        now: usize,
    },

    /// The input holds NaN or infinite values.
    #[error("{what} holds NaN or infinite values")]
    NonFinite {
        /// What was checked.
        what: &'static str,
    },

    /// The method needs a tap point and the probe has none.
    #[error("{method} needs a tap point: build the probe with `Probe::at(tap)`")]
    NoTap {
        /// The method that needs it.
        method: &'static str,
    },

    /// The model's forward pass never reached the requested tap point.
    #[error("the model's forward pass never reached tap {tap}")]
    TapNotReached {
        /// The tap, as its `Debug` text.
        tap: String,
    },

    /// The model's forward pass reached the requested tap point more than once.
    #[error("the model's forward pass reached tap {tap} {count} times; a tap must be unique")]
    TapRepeated {
        /// The tap, as its `Debug` text.
        tap: String,
        /// How many times it was reached.
        count: usize,
    },

    /// CAM needs the class weights of a global-average-pooling + linear head
    /// directly after the tap, and the model offers none there.
    #[error(
        "CAM needs a GAP + linear head after tap {tap}; the model reports no class weights there"
    )]
    NoCamWeights {
        /// The tap, as its `Debug` text.
        tap: String,
    },

    /// Attention rollout needs attention weights and the model reported none.
    #[error(
        "attention rollout needs the model's attention weights; its forward pass reported none (see Trace::attention)"
    )]
    NoAttention,

    /// Guided backpropagation or deconvolution needs ReLU points and the
    /// model reported none.
    #[error(
        "{method} needs the model's ReLUs; its forward pass reported none (apply them with Trace::relu)"
    )]
    NoReluPoints {
        /// The method that needed them.
        method: &'static str,
    },

    /// FullGrad needs bias points and the model reported none.
    #[error("FullGrad needs bias points; the model's forward pass reported none")]
    NoBiasPoints,

    /// A configuration value is out of its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidConfig {
        /// The option.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// One pass of a combinator or one chunk of the pipeline failed; the
    /// cause is the error's [`source`](std::error::Error::source).
    #[error("{pass} failed")]
    Pass {
        /// The pass, e.g. `"tta scale 0.5, flipped"`.
        pass: String,
        /// What went wrong in it.
        source: Box<Error>,
    },

    /// A backend name that is unknown, or whose Cargo feature is off.
    #[error("backend {name:?}: {reason}")]
    Backend {
        /// The name asked for.
        name: String,
        /// Why it is not available.
        reason: String,
    },

    /// Reading or writing a file failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A backend failed to read a tensor back.
    #[error("could not read tensor data from the device: {0}")]
    Data(String),

    /// Reading or writing an image failed.
    #[cfg(feature = "vis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vis")))]
    #[error("image {path}")]
    Image {
        /// The file concerned.
        path: String,
        /// The image library's error.
        source: image::ImageError,
    },

    /// A weight file's tensors do not fit the model: missing, unexpected or
    /// mis-shaped tensors, each named.
    #[error("loading weights from {file}: {reason}")]
    Load {
        /// The file (or `<memory>`).
        file: String,
        /// What does not fit, naming the tensors concerned.
        reason: String,
    },

    /// A weight file cannot be read or written (truncated, not a state
    /// dict); the store's error is the source.
    #[error("reading or writing weights in {file}")]
    Store {
        /// The file (or `<memory>`).
        file: String,
        /// The weight store's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    #[cfg(feature = "pytorch")]
    pub(crate) fn load(file: &str, reason: impl Into<String>) -> Self {
        Error::Load {
            file: file.to_string(),
            reason: reason.into(),
        }
    }

    #[cfg(feature = "pytorch")]
    pub(crate) fn store(
        file: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Store {
            file: file.to_string(),
            source: Box::new(source),
        }
    }

    pub(crate) fn config(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            name,
            reason: reason.into(),
        }
    }
}
