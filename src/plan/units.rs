//! Human durations and sizes in plans (`"2s"`, `"250ms..10s"`, `"2GB"`),
//! parsed by humantime and bytesize and echoed back the same way.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written like `"2s"`, `"250ms"`, `"1m30s"`; `"0"` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses the plan syntax.
    pub fn parse(s: &str) -> Result<HumanDuration, String> {
        let s = s.trim();
        if s == "0" {
            return Ok(HumanDuration(Duration::ZERO));
        }
        humantime::parse_duration(s)
            .map(HumanDuration)
            .map_err(|_| {
                format!("`{s}` is not a duration; write it like \"250ms\", \"2s\" or \"1m30s\"")
            })
    }

    /// Milliseconds, as PostgreSQL settings want them.
    pub fn as_millis(&self) -> u128 {
        self.0.as_millis()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return write!(f, "0");
        }
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A size written like `"512MB"`, `"2GB"`, `"64kB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// Parses the plan syntax.
    pub fn parse(s: &str) -> Result<Size, String> {
        s.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|_| format!("`{s}` is not a size; write it like \"512MB\" or \"2GB\""))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().si())
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Size::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A range of durations, `"250ms..10s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    /// The low end.
    pub min: Duration,
    /// The high end.
    pub max: Duration,
}

impl DurationRange {
    /// Parses the plan syntax.
    pub fn parse(s: &str) -> Result<DurationRange, String> {
        let (lo, hi) = s
            .split_once("..")
            .ok_or_else(|| format!("`{s}` is not a range; write it like \"250ms..10s\""))?;
        let min = HumanDuration::parse(lo)?.0;
        let max = HumanDuration::parse(hi)?.0;
        if min > max {
            return Err(format!("`{s}`: the low end is above the high end"));
        }
        Ok(DurationRange { min, max })
    }
}

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..{}",
            HumanDuration(self.min),
            HumanDuration(self.max)
        )
    }
}

impl<'de> Deserialize<'de> for DurationRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DurationRange::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for s in ["2s", "250ms", "1m 30s", "0"] {
            let d = HumanDuration::parse(s).unwrap();
            assert_eq!(HumanDuration::parse(&d.to_string()).unwrap(), d);
        }
        assert_eq!(
            HumanDuration::parse("2s").unwrap().0,
            Duration::from_secs(2)
        );
        assert!(
            HumanDuration::parse("2 sex")
                .unwrap_err()
                .contains("\"250ms\"")
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(Size::parse("512MB").unwrap().0, 512_000_000);
        assert_eq!(Size::parse("2GiB").unwrap().0, 2 * 1024 * 1024 * 1024);
        assert!(Size::parse("lots").is_err());
    }

    #[test]
    fn ranges_parse_and_check_order() {
        let r = DurationRange::parse("250ms..10s").unwrap();
        assert_eq!(r.min, Duration::from_millis(250));
        assert_eq!(r.max, Duration::from_secs(10));
        assert_eq!(r.to_string(), "250ms..10s");
        assert!(DurationRange::parse("10s..1s").is_err());
        assert!(DurationRange::parse("10s").is_err());
    }
}
