//! Tells systemd how the service is doing (`Type=notify`): `READY=1` once every pipeline
//! runs, `RELOADING=1` then `READY=1` around a reload, `STOPPING=1` when shutting down, and a
//! `STATUS=` line for `systemctl status`.
//!
//! The protocol is one datagram to the Unix socket `NOTIFY_SOCKET` names (a path, or an
//! abstract name after `@`); without that variable nothing is sent. It is small enough that the
//! standard library's Unix sockets do it without a dependency.

/// Sends `state` (newline-separated `KEY=value` lines) to systemd's notify socket, if any.
/// Failures are logged at debug and otherwise ignored: notifying is advisory.
#[cfg(target_os = "linux")]
pub fn notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    let sent = UnixDatagram::unbound().and_then(|sock| match target.strip_prefix('@') {
        Some(name) => {
            let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)
        }
        None => sock.send_to(state.as_bytes(), &target),
    });
    if let Err(e) = sent {
        tracing::debug!(socket = %target, error = %e, "Could not notify systemd.");
    }
}

/// Elsewhere there is no systemd to tell.
#[cfg(not(target_os = "linux"))]
pub fn notify(_state: &str) {}

/// `READY=1`: every one of the `pipelines` runs (after start-up, or a reload).
pub fn ready(pipelines: usize) {
    notify(&format!("READY=1\nSTATUS=Running {pipelines} pipelines"));
}

/// `RELOADING=1` with the monotonic time systemd asks for since version 253.
#[cfg(target_os = "linux")]
pub fn reloading() {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0);
    notify(&format!(
        "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=Reloading the configuration"
    ));
}

/// Elsewhere there is no systemd to tell.
#[cfg(not(target_os = "linux"))]
pub fn reloading() {}
