//! `host:port` endpoints as the OpenTelemetry Collector writes them.

/// Checks a listening endpoint (`host:port`, `[::1]:port` or `:port`) and returns it in the
/// form `TcpListener::bind` takes (`:port` becomes `0.0.0.0:port`).
pub fn listen_address(endpoint: &str) -> Result<String, String> {
    let (host, port) = split_host_port(endpoint)?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Splits `host:port`, checking the port is a number from 0 to 65535.
pub fn split_host_port(endpoint: &str) -> Result<(&str, u16), String> {
    let bad = |why: &str| {
        format!(
            "invalid endpoint `{endpoint}`: {why}; write it as `host:port`, e.g. `127.0.0.1:4317`"
        )
    };
    if endpoint.contains("://") {
        return Err(bad("a listening endpoint takes no scheme"));
    }
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| bad("an IPv6 host needs `[addr]:port`"))?;
        (h, p)
    } else {
        endpoint
            .rsplit_once(':')
            .ok_or_else(|| bad("the port is missing"))?
    };
    if host.contains(':') && !endpoint.starts_with('[') {
        return Err(bad("an IPv6 host needs brackets"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_collector_style_endpoints() {
        assert_eq!(listen_address("127.0.0.1:4317").unwrap(), "127.0.0.1:4317");
        assert_eq!(listen_address("localhost:4318").unwrap(), "localhost:4318");
        assert_eq!(listen_address(":4317").unwrap(), "0.0.0.0:4317");
        assert_eq!(listen_address("[::1]:4317").unwrap(), "[::1]:4317");
    }

    #[test]
    fn explains_bad_endpoints() {
        assert!(
            listen_address("4317")
                .unwrap_err()
                .contains("port is missing")
        );
        assert!(
            listen_address("host:99999")
                .unwrap_err()
                .contains("0 to 65535")
        );
        assert!(
            listen_address("http://a:1")
                .unwrap_err()
                .contains("no scheme")
        );
    }
}
