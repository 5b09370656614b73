//! Sizes, durations and hashes as people write them in policies and flags.

use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::text::format_size;

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// Accepts 64 hex digits in any case.
pub fn normalise_sha256(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "sha256 must be 64 hexadecimal digits, got '{s}'"
        )));
    }
    Ok(s)
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `10MB`, `2TiB`, `4096` (bytes): a
/// whole number and a unit. A value that does not fit 64 bits is an error,
/// never a wrapped number.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let digits = num.replace('_', "");
    if digits.is_empty() {
        return Err(invalid(format!("'{s}' is not a size (e.g. 64MiB)")));
    }
    let too_large = || invalid(format!("size '{s}' is too large"));
    let num: u64 = digits.parse().map_err(|_| too_large())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        "t" | "tib" => 1 << 40,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(invalid(format!(
                "unknown size unit '{other}' in '{s}' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            )))
        }
    };
    num.checked_mul(mult).ok_or_else(too_large)
}

/// Parses `250ms`, `5s`, `1m 30s`, ...
pub fn parse_duration(s: &str) -> Result<Duration> {
    humantime::parse_duration(s.trim())
        .map_err(|e| invalid(format!("'{s}' is not a duration (e.g. 500ms, 5s, 2m): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("10 MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(parse_size("2TiB").unwrap(), 2 << 40);
        for bad in [
            "99999999999TiB",
            "99999999999999999999",
            "18446744073709551616",
        ] {
            let e = format!("{:#}", parse_size(bad).unwrap_err());
            assert!(e.contains("too large"), "{bad}: {e}");
        }
        assert_eq!(parse_size("18446744073709551615").unwrap(), u64::MAX);
        for bad in ["", "MiB", "-1", "1.5GiB", "0x10"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }
}
