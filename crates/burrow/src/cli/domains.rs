//! `burrow tunnel domains ...`: a tunnel's custom domains (the same calls as the web UI's
//! Domains panel, docs/custom-domains.md). `add` and `show` print the two DNS records to
//! publish, both as fields for a DNS provider's form and as zone-file lines; `list` is a
//! table; `--json` prints the API's answers as they come.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::output::{self, Col};
use super::tunnel::tunnel_path;
use super::{exit, Failure};
use crate::col;

#[derive(Subcommand)]
pub enum DomainsAction {
    /// Add a hostname of yours (not under the base domain, no wildcard, no IP address);
    /// prints the DNS records to publish.
    Add {
        dsn: String,
        id: i64,
        hostname: String,
    },
    /// The tunnel's domains: status, why, certificate expiry.
    List { dsn: String, id: i64 },
    /// One domain (by id or hostname): its status and the records to publish.
    Show {
        dsn: String,
        id: i64,
        /// The domain's id, or its hostname.
        domain: String,
    },
    /// Check the domain's DNS records again now (after publishing or fixing them).
    Check {
        dsn: String,
        id: i64,
        /// The domain's id, or its hostname.
        domain: String,
    },
    /// Stop serving the hostname and delete its certificate.
    #[command(visible_alias = "delete")]
    Remove {
        dsn: String,
        id: i64,
        /// The domain's id, or its hostname.
        domain: String,
    },
}

/// `show`'s lines; `list`'s table is the first six.
const DOMAIN: [Col; 9] = [
    col!("ID", "id"),
    col!("HOSTNAME", "hostname"),
    col!("STATUS", "status"),
    col!("REASON", "status_reason"),
    col!("CERT EXPIRES", |d: &Value| output::cell(
        &d["certificate"]["not_after"]
    )),
    col!("CHECKED", "checked_at"),
    col!("NEXT CHECK", "next_check_at"),
    col!("SERVED", "served"),
    col!("URL", "url"),
];

impl DomainsAction {
    /// The API path of the tunnel's domains.
    fn path(&self) -> String {
        let (DomainsAction::Add { dsn, id, .. }
        | DomainsAction::List { dsn, id }
        | DomainsAction::Show { dsn, id, .. }
        | DomainsAction::Check { dsn, id, .. }
        | DomainsAction::Remove { dsn, id, .. }) = self;
        format!("{}/domains", tunnel_path(dsn, *id))
    }
}

/// Runs a `domains` action and prints its answer (a table, or `--json`).
pub async fn run(api: &Api, action: DomainsAction, json: bool) -> anyhow::Result<()> {
    let domains = action.path();
    match action {
        DomainsAction::Add { dsn, id, hostname } => {
            let d = api
                .call(
                    Method::POST,
                    &domains,
                    Some(&json!({ "hostname": hostname })),
                )
                .await?;
            if json {
                output::json(&d);
                return Ok(());
            }
            println!(
                "added {} (id {}): {}",
                output::cell(&d["hostname"]),
                output::cell(&d["id"]),
                output::cell(&d["status"])
            );
            if d["converted_from_unicode"] == Value::Bool(true) {
                println!(
                    "(the name was converted to its ASCII form: publish the records under {})",
                    output::cell(&d["hostname"])
                );
            }
            println!();
            print!("{}", records(&d));
            println!(
                "\nOnce they are published: burrow tunnel domains check {dsn} {id} {}",
                output::cell(&d["id"])
            );
        }
        DomainsAction::List { .. } => {
            let list = api.get(&domains).await?;
            if json {
                output::json(&list);
            } else {
                print!("{}", output::table(output::items(&list), &DOMAIN[..6]));
            }
        }
        DomainsAction::Show { domain, .. } => {
            let id = domain_id(api, &domains, &domain).await?;
            let d = api.get(&format!("{domains}/{id}")).await?;
            if json {
                output::json(&d);
                return Ok(());
            }
            print!("{}", output::record(&d, &DOMAIN));
            println!();
            print!("{}", records(&d));
        }
        DomainsAction::Check { domain, .. } => {
            let id = domain_id(api, &domains, &domain).await?;
            let d = api
                .call(Method::POST, &format!("{domains}/{id}/check"), None)
                .await?;
            if json {
                output::json(&d);
                return Ok(());
            }
            println!(
                "checking {} now (status: {}; see `burrow tunnel domains show`)",
                output::cell(&d["hostname"]),
                output::cell(&d["status"])
            );
        }
        DomainsAction::Remove { domain, .. } => {
            let id = domain_id(api, &domains, &domain).await?;
            let answer = api
                .call(Method::DELETE, &format!("{domains}/{id}"), None)
                .await?;
            if json {
                output::json(&answer);
            } else {
                println!("removed domain {domain}");
            }
        }
    }
    Ok(())
}

/// The id of `domain`: as given when it is a number, else the id of the tunnel's domain of
/// that hostname.
async fn domain_id(api: &Api, domains: &str, domain: &str) -> anyhow::Result<i64> {
    if let Ok(id) = domain.parse::<i64>() {
        return Ok(id);
    }
    let wanted = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let list = api.get(domains).await?;
    output::items(&list)
        .iter()
        .find(|d| d["hostname"].as_str() == Some(wanted.as_str()))
        .and_then(|d| d["id"].as_i64())
        .ok_or_else(|| {
            Failure::new(
                exit::NOT_FOUND,
                format!("the tunnel has no domain {wanted} (see `burrow tunnel domains list`)"),
            )
            .into()
        })
}

/// The records of domain `d` to publish: as a DNS provider's form asks for them, then as
/// zone-file lines.
fn records(d: &Value) -> String {
    let txt = &d["verification"];
    let target = &d["target"];
    let field = |r: &Value, k: &str| output::cell(&r[k]);
    let mut out = String::from("Publish these DNS records (keep the TXT record):\n\n");
    for r in [txt, target] {
        out.push_str(&format!(
            "  {:<6} name:  {}\n         value: {}\n",
            field(r, "type"),
            field(r, "name"),
            field(r, "value")
        ));
    }
    out.push_str("\nAs zone-file lines:\n\n");
    out.push_str(&format!(
        "  {}. IN TXT \"{}\"\n",
        field(txt, "name"),
        field(txt, "value")
    ));
    out.push_str(&format!(
        "  {}. IN CNAME {}.\n",
        field(target, "name"),
        field(target, "value")
    ));
    out.push_str(
        "\n(or A/AAAA records with the addresses of the CNAME's target, e.g. at a zone apex)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::records;
    use serde_json::json;

    #[test]
    fn records_are_printed_as_fields_and_zone_lines() {
        let d = json!({
            "verification": {"type": "TXT", "name": "_burrow-challenge.a.example.com",
                             "value": "burrow-verify=abc"},
            "target": {"type": "CNAME", "name": "a.example.com", "value": "dev-1.fleet.test"},
        });
        let text = records(&d);
        assert!(text.contains("  TXT    name:  _burrow-challenge.a.example.com\n"));
        assert!(text.contains("         value: burrow-verify=abc\n"));
        assert!(text.contains("  CNAME  name:  a.example.com\n"));
        assert!(text.contains("_burrow-challenge.a.example.com. IN TXT \"burrow-verify=abc\"\n"));
        assert!(text.contains("  a.example.com. IN CNAME dev-1.fleet.test.\n"));
    }
}
