//! Every output of the switch, made from one value: a [`Snapshot`] of its
//! state and counters, or a typed control reply ([`crate::api`]).
//!
//! * [`text`]: for people (`odpx ctl show`, `pmd-stats-show`, the lists);
//! * [`json`]: for scripts (`odpx ctl --json`) and the control socket's
//!   wire format;
//! * [`prometheus`]: for monitoring (the `[metrics]` endpoint).
//!
//! A counter is defined once, with its name, help text and unit
//! ([`odpx_classifier::counters!`]); the renderers only decide layout.
//! A test renders one snapshot all three ways and checks that every
//! counter shows the same value in each (`control/tests/render.rs`).
//!
//! [`Snapshot`]: crate::snapshot::Snapshot

pub mod json;
pub mod prometheus;
pub mod text;
