//! # odpx-offload (issue 3: not built yet)
//!
//! Will hold the ODP generic-netlink client (`neli`) and the offload policy.
//! It depends on `odpx-classifier` only. Nothing is implemented here yet.
#![forbid(unsafe_code)]
