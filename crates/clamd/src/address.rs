//! Where clamd listens: a TCP `host:port` or a unix socket path, as
//! `[stages.scan.scanner] address` writes it.

use std::path::PathBuf;

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port`
    Tcp(String),
    Unix(PathBuf),
}

impl ClamdAddress {
    /// From `[stages.scan.scanner] address`: `unix:///path`, or `tcp://host:port` (the
    /// scheme may be left out for TCP).
    pub fn from_config(address: &str) -> Self {
        match address.strip_prefix("unix://") {
            Some(path) => ClamdAddress::Unix(path.into()),
            None => ClamdAddress::Tcp(address.trim_start_matches("tcp://").to_owned()),
        }
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddress::Tcp(a) => write!(f, "tcp://{a}"),
            ClamdAddress::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_addresses_round_trip_through_display() {
        for (config, address, shown) in [
            (
                "tcp://127.0.0.1:3310",
                ClamdAddress::Tcp("127.0.0.1:3310".into()),
                "tcp://127.0.0.1:3310",
            ),
            (
                "clamd:3310",
                ClamdAddress::Tcp("clamd:3310".into()),
                "tcp://clamd:3310",
            ),
            (
                "unix:///run/clamav/clamd.ctl",
                ClamdAddress::Unix("/run/clamav/clamd.ctl".into()),
                "unix:///run/clamav/clamd.ctl",
            ),
        ] {
            assert_eq!(ClamdAddress::from_config(config), address, "{config}");
            assert_eq!(address.to_string(), shown);
        }
    }
}
