//! esxi-harness
