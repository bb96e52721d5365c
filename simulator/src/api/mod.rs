//! What a vSphere call is made of, whatever the wire it came by: the decoded call and its
//! parameters ([`call`]), managed-object references, values and data objects ([`value`]), and
//! faults ([`fault`]). The managed objects ([`crate::vim`])
//! answer in these; each wire ([`crate::soap`]) reads its requests into them and writes them
//! its own way.

pub mod call;
pub mod fault;
pub mod value;

pub use call::{Call, Param};
pub use fault::Fault;
pub use value::{Data, MoRef, Value};
