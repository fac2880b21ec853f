//! The fake Dataverse Web API (`https://{org}/api/data/v9.2/…`).

pub(crate) mod annotations;
pub(crate) mod batch;
pub(crate) mod bulk;
pub(crate) mod context;
pub(crate) mod faults;
pub(crate) mod fetchxml;
pub(crate) mod files;
pub(crate) mod metadata;
pub(crate) mod odata;
pub(crate) mod operations;
pub(crate) mod paging_bugs;
pub(crate) mod path;
pub(crate) mod records;
pub(crate) mod relations;
pub(crate) mod render;
pub(crate) mod reply;
pub(crate) mod router;
pub(crate) mod table;
