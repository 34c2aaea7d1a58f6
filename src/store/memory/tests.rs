//! The memory store against the behaviour suite every backend passes.

use std::sync::Arc;

use super::MemoryStore;
use crate::store::suite::{Subject, store_behaviour};

fn open() -> Subject {
    Subject::new(Arc::new(MemoryStore::new()), ())
}

store_behaviour!(open);
