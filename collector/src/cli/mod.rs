//! What the `lumina` command line does beyond running a collector: `dlq replay` sends dead
//! letters again; `plugin test` / `plugin inspect` run a built plugin for its author; `tap` and `top` read a running collector's admin endpoint; `test` runs a config's tests. `main.rs` parses the command line and calls these.

pub mod admin;
pub mod dlq;
pub mod plugin;
pub mod test;
