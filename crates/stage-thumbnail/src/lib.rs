//! The thumbnail stage: reads a promoted (scanned clean) image once from the store bucket,
//! renders every rendition its content class configures (`intake-imaging`, on a bounded
//! blocking pool and within a memory budget) and writes them to the derivatives bucket under
//! `{tenant}/{object id}/{rendition}.{ext}`. Objects of classes without renditions are
//! `skipped`; images the decoder refuses are `failed` with a fixed code.

mod budget;
mod stage;

pub use budget::MemoryBudget;
pub use stage::{
    OBJECT_ID_METADATA, RENDITION_METADATA, SOURCE_BUCKET_METADATA, SOURCE_KEY_METADATA,
    SOURCE_VERSION_METADATA, Thumbnail, rendition_key,
};
