//! esxi-harness: backup/restore scenarios against the embedded simulator or a real host.
//! The runner, scenario files and reports arrive with issue 5; this crate holds the workspace
//! slot the product card fixes.
