//! What the `lumina` command line does beyond running a collector: `dlq replay` sends dead
//! letters again. `main.rs` parses the command line and calls these.

pub mod dlq;
