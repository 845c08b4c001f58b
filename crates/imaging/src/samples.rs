//! Synthetic images for tests and the benchmark: every format and edge case the thumbnail stage must handle (filled in below).
