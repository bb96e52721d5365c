//! VI/JSON, the second wire of the same API (vSphere 8.0 U1+, vCenter only): a call's parameters
//! are one JSON object ([`read`]), values and faults are JSON ([`write`]). What a call means
//! is [`crate::api`]'s and the managed objects' ([`crate::vim`]), the same as over SOAP; the
//! HTTP side (paths, the session header, statuses, release negotiation) is the server's
//! ([`crate::server::vijson`]).
//!
//! The encoding, as `vim_rs` (its generated types) and govmomi's `vim25/json` read and write it:
//! every data object carries `_typeName`; a managed-object reference is the data object
//! `{"_typeName":"ManagedObjectReference","type":...,"value":...}`; arrays are JSON arrays;
//! where the schema says `anyType` a primitive or an array is boxed as
//! `{"_typeName":"string","_value":...}` (`ArrayOfString`, ...), a data object is itself.

pub mod read;
pub mod write;

pub use read::params;
pub use write::{fault, property, value};
