//! `burrow login`: signs in with email and password and stores the session's JWT (and the
//! server) in `~/.config/burrow/` (mode 0600), where the other commands find it. The stored
//! token is a user JWT: it expires after the server's `jwt_ttl_minutes` and `logout-all`
//! revokes it (personal access tokens will replace it; see docs/cli.md).

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{exit, Failure, DEFAULT_SERVER};

#[derive(Args)]
pub struct LoginArgs {
    /// The server's base URL. Env: BURROW_SERVER.
    #[arg(long, env = "BURROW_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    #[arg(long)]
    email: String,
    /// The password is the first line of stdin (else it is prompted for on a terminal).
    #[arg(long)]
    password_stdin: bool,
}

/// `$XDG_CONFIG_HOME/burrow` or `~/.config/burrow`.
pub fn config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("burrow"))
}

/// A stored value (`token`, `server`), when present and not empty.
pub fn stored(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(config_dir()?.join(name)).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn store(name: &str, value: &str) -> anyhow::Result<PathBuf> {
    let dir =
        config_dir().ok_or_else(|| anyhow::anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    // An older file keeps its mode on open; the token is for its owner only.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{value}")?;
    Ok(path)
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = read_password(args.password_stdin)?;
    let server = args.server.trim_end_matches('/').to_string();
    let resp = reqwest::Client::new()
        .post(format!("{server}/api/v1/auth/login"))
        .json(&json!({"email": args.email, "password": password}))
        .send()
        .await
        .map_err(|e| {
            Failure::new(
                exit::UNREACHABLE,
                format!(
                    "cannot reach the server at {server}: {:#}",
                    anyhow::Error::new(e)
                ),
            )
        })?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(super::api::failure(status, &body).into());
    }
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server's answer has no access_token"))?;
    let path = store("token", token)?;
    store("server", &server)?;
    println!(
        "logged in to {server} as {}; token stored in {} (a session JWT: run `burrow login` \
         again when it expires)",
        args.email,
        path.display()
    );
    Ok(())
}

/// One line from stdin; on a terminal, prompted for with echo off.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let tty = !from_stdin && stdin.is_terminal();
    if tty {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let echo = tty.then(EchoOff::new).flatten();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(echo);
    if tty {
        eprintln!();
    }
    read?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    anyhow::ensure!(!password.is_empty(), "no password given");
    Ok(password)
}

/// The terminal's echo, off until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios the call fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
