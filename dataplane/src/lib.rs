//! # odpx-dataplane (issue 4: not built yet)
//!
//! Will hold the AF_XDP ports (the only `unsafe` module of odpx), the
//! in-memory port type, the PMD threads and action execution. It depends on
//! `odpx-classifier` only. Nothing is implemented here yet; the crate exists
//! so the workspace layout and its layering are fixed from the start.
#![forbid(unsafe_code)]
