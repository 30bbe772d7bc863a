//! Codec tests: published vectors in both directions, property tests, and the `smsgate pdu` CLI.
//! One test binary (modules below) so the 2-core machine links once.

mod cli;
mod props;
mod vectors;
