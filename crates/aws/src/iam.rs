//! IAM policies (see below).
