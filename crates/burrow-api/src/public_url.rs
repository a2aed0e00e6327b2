//! `public_url` names: `device-<dsn>.<domain>` for a device's first tunnel (the seed's form),
//! then `device-<dsn>-<name>` and a random suffix if that is taken too. Uniqueness is the
//! database's: callers insert candidates in order and move on when one conflicts, which is
//! also what makes concurrent creation safe.

use rand::Rng;

use crate::domain::{Dsn, Subdomain};

const MAX_LABEL: usize = 63;

/// The host names to try, in order, for a new tunnel of `dsn` named `name`.
pub fn candidates(dsn: &Dsn, name: &str, base_domain: &str) -> Vec<String> {
    let base = format!("device-{}", dsn.label());
    let slug = slug(name);
    let mut labels = vec![fit(&base)];
    if !slug.is_empty() {
        labels.push(fit(&format!("{base}-{slug}")));
    }
    let mut rng = rand::thread_rng();
    for _ in 0..4 {
        let suffix: u32 = rng.gen_range(0x1000..0xffff);
        let stem = if slug.is_empty() {
            base.clone()
        } else {
            format!("{base}-{slug}")
        };
        labels.push(fit_with_suffix(&stem, &format!("{suffix:x}")));
    }
    labels.dedup();
    labels.into_iter().map(|l| host(&l, base_domain)).collect()
}

pub fn requested(sub: &Subdomain, base_domain: &str) -> String {
    host(sub.as_str(), base_domain)
}

fn host(label: &str, base_domain: &str) -> String {
    format!(
        "{label}.{}",
        base_domain.trim_end_matches('.').to_ascii_lowercase()
    )
}

/// Lower-case alphanumerics with single dashes: "Web Dashboard!" → "web-dashboard".
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn fit(label: &str) -> String {
    let cut: String = label.chars().take(MAX_LABEL).collect();
    cut.trim_end_matches('-').to_string()
}

fn fit_with_suffix(stem: &str, suffix: &str) -> String {
    let room = MAX_LABEL - suffix.len() - 1;
    let cut: String = stem.chars().take(room).collect();
    format!("{}-{suffix}", cut.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_candidate_is_the_seed_form() {
        let dsn = Dsn::parse("ABC123").expect("dsn");
        let c = candidates(&dsn, "Web Dashboard", "fleet.example.com");
        assert_eq!(c[0], "device-abc123.fleet.example.com");
        assert_eq!(c[1], "device-abc123-web-dashboard.fleet.example.com");
        assert!(c.len() >= 4);
        for h in &c {
            let label = h.split('.').next().expect("label");
            assert!(Subdomain::parse(label).is_ok(), "{label} is a DNS label");
        }
    }

    #[test]
    fn long_names_still_fit_one_label() {
        let dsn = Dsn::parse(&"X".repeat(64)).expect("dsn");
        for h in candidates(&dsn, &"name ".repeat(40), "localhost") {
            let label = h.split('.').next().expect("label");
            assert!(
                label.len() <= 63 && Subdomain::parse(label).is_ok(),
                "{label}"
            );
        }
    }
}
