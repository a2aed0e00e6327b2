//! Validation of control-operation inputs, with AWS's limits (tunnel-control-api.md, "Shapes
//! and constraints"). botocore does not check maximums or enums, so the server must.

use burrow_store::Tag;

use crate::error::{invalid, BrokerError};

pub(crate) const MAX_SERVICES: usize = 3;
pub(crate) const MAX_LIFETIME_MINUTES: i64 = 720;
const MAX_TAGS: usize = 200;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')
}

/// `[a-zA-Z0-9:_-]{1,128}`: service ids and thing names.
fn check_name(what: &str, value: &str) -> Result<(), BrokerError> {
    if value.is_empty() || value.len() > 128 || !value.chars().all(is_name_char) {
        return Err(invalid(format!(
            "{what} must be 1-128 characters of [a-zA-Z0-9:_-]"
        )));
    }
    Ok(())
}

pub(crate) fn lifetime(minutes: Option<i64>, default: i64) -> Result<i64, BrokerError> {
    let minutes = minutes.unwrap_or(default);
    if !(1..=MAX_LIFETIME_MINUTES).contains(&minutes) {
        return Err(invalid(format!(
            "maxLifetimeTimeoutMinutes must be 1..={MAX_LIFETIME_MINUTES}"
        )));
    }
    Ok(minutes)
}

/// An empty list is allowed: such a tunnel runs V1 style (no serviceId).
pub(crate) fn services(services: &[String]) -> Result<(), BrokerError> {
    if services.len() > MAX_SERVICES {
        return Err(invalid(format!(
            "at most {MAX_SERVICES} services per tunnel"
        )));
    }
    for (i, s) in services.iter().enumerate() {
        check_name("service id", s)?;
        if services[..i].contains(s) {
            return Err(invalid("service ids must be unique"));
        }
    }
    Ok(())
}

pub(crate) fn thing_name(name: Option<&str>) -> Result<(), BrokerError> {
    name.map_or(Ok(()), |n| check_name("thing name", n))
}

/// Approximates `\p{C}` (control, format, private use, surrogate, unassigned) with the code
/// points that matter in practice: C0/C1 controls, bidi and zero-width format characters, BOM,
/// soft hyphen and the private-use areas.
fn is_other_char(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
            | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

pub(crate) fn description(value: Option<&str>) -> Result<(), BrokerError> {
    let Some(d) = value else { return Ok(()) };
    let len = d.chars().count();
    if len == 0 || len > 2048 || d.chars().any(is_other_char) {
        return Err(invalid(
            "description must be 1-2048 characters without control characters",
        ));
    }
    Ok(())
}

pub(crate) fn tags(tags: &[Tag]) -> Result<(), BrokerError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!("at most {MAX_TAGS} tags")));
    }
    for (i, t) in tags.iter().enumerate() {
        let klen = t.key.chars().count();
        if klen == 0 || klen > 128 || t.key.chars().any(is_other_char) {
            return Err(invalid("tag keys must be 1-128 characters"));
        }
        if t.key.starts_with("aws:") {
            return Err(invalid("tag keys must not start with aws:"));
        }
        if t.value.chars().count() > 256 || t.value.chars().any(is_other_char) {
            return Err(invalid("tag values must be 0-256 characters"));
        }
        if tags[..i].iter().any(|o| o.key == t.key) {
            return Err(invalid("tag keys must be unique"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn limits() {
        assert_eq!(lifetime(None, 720).unwrap(), 720);
        assert!(lifetime(Some(0), 720).is_err());
        assert!(lifetime(Some(721), 720).is_err());
        assert!(services(&s(&["SSH1", "HTTP:1", "a_b-c"])).is_ok());
        assert!(services(&[]).is_ok());
        assert!(services(&s(&["a", "b", "c", "d"])).is_err());
        assert!(services(&s(&["a", "a"])).is_err());
        assert!(services(&s(&["sp ace"])).is_err());
        assert!(services(&["x".repeat(129)]).is_err());
        assert!(thing_name(Some("dev-1")).is_ok());
        assert!(thing_name(Some("")).is_err());
        assert!(description(Some("héllo wörld")).is_ok());
        assert!(description(Some("bad\nline")).is_err());
        assert!(description(Some("")).is_err());
        assert!(description(Some(&"x".repeat(2049))).is_err());
        let tag = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        assert!(tags(&[tag("k", ""), tag("k2", "v")]).is_ok());
        assert!(tags(&[tag("", "v")]).is_err());
        assert!(tags(&[tag("k", "v"), tag("k", "w")]).is_err());
        assert!(tags(&[tag("aws:x", "v")]).is_err());
    }
}
