//! A doctor's findings: one line per check (`ok` / `warn` / `FAIL`), what was found and, when
//! something is wrong, the fix in words. Shared by `burrow doctor` (server) and
//! `burrow-agent doctor` (device).

use std::io::Write;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked, e.g. `device URL https://edge.example.com:8443 resolves`.
    pub name: String,
    pub status: Level,
    /// What was found.
    pub detail: String,
    /// What to do about it (warnings and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new() -> Report {
        Report {
            ok: true,
            checks: Vec::new(),
        }
    }

    pub fn ok(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.push(name.into(), Level::Ok, detail.into(), None);
    }

    pub fn warn(&mut self, name: impl Into<String>, detail: impl Into<String>, fix: &str) {
        self.push(name.into(), Level::Warn, detail.into(), Some(fix.into()));
    }

    pub fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>, fix: &str) {
        self.push(name.into(), Level::Fail, detail.into(), Some(fix.into()));
    }

    /// A check's outcome as computed elsewhere.
    pub fn push(&mut self, name: String, status: Level, detail: String, fix: Option<String>) {
        if status == Level::Fail {
            self.ok = false;
        }
        self.checks.push(Check {
            name,
            status,
            detail,
            fix,
        });
    }

    /// Prints the report (text or JSON) to stdout; answers the exit code: 0 when nothing
    /// failed (warnings allowed), 1 otherwise.
    pub fn print(&self, json: bool) -> i32 {
        let mut out = std::io::stdout().lock();
        if json {
            let text = serde_json::to_string_pretty(self).unwrap_or_default();
            let _ = writeln!(out, "{text}");
        } else {
            for c in &self.checks {
                let tag = match c.status {
                    Level::Ok => "ok  ",
                    Level::Warn => "warn",
                    Level::Fail => "FAIL",
                };
                let _ = writeln!(out, "{tag}  {}: {}", c.name, c.detail);
                if let Some(fix) = &c.fix {
                    let _ = writeln!(out, "      fix: {fix}");
                }
            }
            let (fails, warns) = self.checks.iter().fold((0, 0), |(f, w), c| match c.status {
                Level::Fail => (f + 1, w),
                Level::Warn => (f, w + 1),
                Level::Ok => (f, w),
            });
            let _ = writeln!(
                out,
                "{} checks: {fails} failed, {warns} warnings",
                self.checks.len()
            );
        }
        i32::from(!self.ok)
    }
}
