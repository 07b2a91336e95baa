//! Code shared by the examples.
#![allow(dead_code)]

pub mod train;
