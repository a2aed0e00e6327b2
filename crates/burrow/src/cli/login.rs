//! `burrow login`: signs in with email and password, creates a personal access token for this
//! machine with the session and stores the token (and the server) in `~/.config/burrow/`
//! (mode 0600), where the other commands find it. The session JWT itself is not kept. The
//! token lives `--expires-in-days` (default 90) and is revoked by `burrow logout`, from the
//! web UI's account page, or by `DELETE /api/v1/auth/tokens/{id}` (docs/accounts.md).

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
    #[arg(long, required_unless_present = "token_stdin")]
    email: Option<String>,
    /// The password is the first line of stdin (else it is prompted for on a terminal).
    #[arg(long)]
    password_stdin: bool,
    /// Store a personal access token made elsewhere (the web UI's Account page; the way in
    /// when the server signs people in through SSO only), read from the first line of stdin.
    #[arg(long, conflicts_with_all = ["email", "password_stdin"])]
    token_stdin: bool,
    /// The stored token's scope: `full`, or `read` (GET only).
    #[arg(long, default_value = "full", value_parser = ["full", "read"])]
    scope: String,
    /// Days until the stored token expires (1-365).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=365))]
    expires_in_days: i64,
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
    let server = args.server.trim_end_matches('/').to_string();
    if args.token_stdin {
        return store_given_token(&server).await;
    }
    let email = args.email.clone().unwrap_or_default();
    let password = read_password(args.password_stdin)?;
    let resp = reqwest::Client::new()
        .post(format!("{server}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .map_err(|e| cannot_reach(&server, e))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(super::api::failure(status, &body).into());
    }
    let session = body["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server's answer has no access_token"))?;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let name = format!("burrow CLI on {}", host.trim())
        .trim()
        .chars()
        .take(100)
        .collect::<String>();
    let resp = reqwest::Client::new()
        .post(format!("{server}/api/v1/auth/tokens"))
        .bearer_auth(session)
        .json(&json!({"name": name, "scope": args.scope, "expires_in_days": args.expires_in_days}))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(super::api::failure(status, &body).into());
    }
    let (Some(token), Some(id)) = (body["token"].as_str(), body["id"].as_i64()) else {
        anyhow::bail!("the server's answer has no token");
    };
    let path = store("token", token)?;
    store("token_id", &id.to_string())?;
    store("server", &server)?;
    println!(
        "logged in to {server} as {}; a {} personal access token (expires {}) is stored in {}",
        email,
        args.scope,
        body["expires_at"].as_str().unwrap_or("later"),
        path.display()
    );
    Ok(())
}

/// `login --token-stdin`: checks the token against the server, then stores it.
async fn store_given_token(server: &str) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let token = line.trim();
    anyhow::ensure!(!token.is_empty(), "no token given on stdin");
    let resp = reqwest::Client::new()
        .get(format!("{server}/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| cannot_reach(server, e))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(super::api::failure(status, &body).into());
    }
    let path = store("token", token)?;
    // Its id is not known here: `logout` then only forgets it.
    forget("token_id")?;
    store("server", server)?;
    println!(
        "logged in to {server} as {}; the token is stored in {}",
        body["email"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(())
}

fn forget(name: &str) -> anyhow::Result<()> {
    let Some(dir) = config_dir() else {
        return Ok(());
    };
    match std::fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn cannot_reach(server: &str, e: reqwest::Error) -> Failure {
    Failure::new(
        exit::UNREACHABLE,
        format!(
            "cannot reach the server at {server}: {:#}",
            anyhow::Error::new(e)
        ),
    )
}

/// `burrow logout`: revokes the stored token on the server and forgets it.
pub async fn logout(server: Option<String>) -> anyhow::Result<()> {
    let Some(token) = stored("token") else {
        println!("not logged in");
        return Ok(());
    };
    let server = server
        .or_else(|| stored("server"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let server = server.trim_end_matches('/');
    if let Some(id) = stored("token_id") {
        let resp = reqwest::Client::new()
            .delete(format!("{server}/api/v1/auth/tokens/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| cannot_reach(server, e))?;
        let status = resp.status();
        // Already revoked or expired (401) is as good as revoked now.
        if !status.is_success() && status != reqwest::StatusCode::UNAUTHORIZED {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            return Err(super::api::failure(status, &body).into());
        }
    }
    let revoked = stored("token_id").is_some();
    forget("token")?;
    forget("token_id")?;
    if revoked {
        println!("logged out of {server}; the token is revoked");
    } else {
        println!("logged out: the token is forgotten here; revoke it on the web UI's Account page");
    }
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
