//! The odpx benchmarks' shared code. The workloads themselves (flows,
//! frames, rule sets) live in [`odpx_dataplane::workload`], where the
//! traffic generator uses them too; they are re-exported here for the
//! benchmarks.

pub use odpx_dataplane::workload::*;
