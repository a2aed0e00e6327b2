//! The HTTP methods a key or link may use: a short list of standard methods, upper case.

use crate::error::ApiError;

const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `None` or `[]`: every method. Otherwise each must be a standard method, upper case as
/// HTTP writes them; answered sorted, without duplicates.
pub fn parse_methods(methods: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let methods = methods.unwrap_or_default();
    if methods.len() > KNOWN.len() * 2 {
        return Err(ApiError::validation("methods", "too many methods"));
    }
    let mut out = Vec::new();
    for m in methods {
        if !KNOWN.contains(&m.as_str()) {
            return Err(ApiError::validation(
                "methods",
                format!("methods must be among {}", KNOWN.join(", ")),
            ));
        }
        out.push(m);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Whether `method` is allowed by `methods` (empty: all).
pub fn method_allowed(methods: &[String], method: &str) -> bool {
    methods.is_empty() || methods.iter().any(|m| m == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_standard_and_normalised() {
        assert_eq!(parse_methods(None).expect("none"), Vec::<String>::new());
        assert_eq!(
            parse_methods(Some(vec!["HEAD".into(), "GET".into(), "GET".into()])).expect("ok"),
            vec!["GET".to_string(), "HEAD".to_string()]
        );
        assert!(parse_methods(Some(vec!["BREW".into()])).is_err());
        assert!(parse_methods(Some(vec!["get".into()])).is_err());
        assert!(parse_methods(Some(vec![" GET".into()])).is_err());
        assert!(parse_methods(Some(vec!["".into()])).is_err());
        assert!(method_allowed(&[], "DELETE"));
        assert!(method_allowed(&["GET".into()], "GET"));
        assert!(!method_allowed(&["GET".into()], "POST"));
    }
}
