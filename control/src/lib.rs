//! # odpx-control (issue 4: not built yet)
//!
//! Will hold the translator service, configuration, the control socket and
//! the switch daemon, on top of `odpx-dataplane` and `odpx-offload`.
//! Nothing is implemented here yet.
#![forbid(unsafe_code)]
