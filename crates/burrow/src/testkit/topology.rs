//! Test hosts on one machine: a network namespace per host, all joined by veth pairs to a
//! bridge in a hub namespace (one L2 segment, addresses 10.250.0.0/24 that exist only inside
//! these namespaces). Names resolve through `/etc/netns/<ns>/hosts`, which `ip netns exec`
//! mounts over `/etc/hosts` for the processes it starts. An outbound-only host drops every
//! new incoming connection (nftables), as a device behind NAT or a firewall would.
//!
//! Everything is removed when the [`Topology`] is dropped, also when a test fails; namespaces
//! left by a killed test run are removed by the next one. Needs root, `ip` (iproute2) and
//! `nft` (nftables): `scripts/test` installs them; without them [`Topology::build`] fails
//! with a message that says so.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};

const NETNS_DIR: &str = "/var/run/netns";
const ETC_NETNS: &str = "/etc/netns";
/// Namespaces of this kit are `btN-M-...` where N is the test process's pid.
const PREFIX: &str = "bt";

/// One host to create.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// The host's name (e.g. `burrow.test`), resolvable on every host.
    pub name: String,
    /// More names for the same address (every host resolves them too).
    pub aliases: Vec<String>,
    /// Drop every new incoming connection (replies to its own connections pass).
    pub outbound_only: bool,
}

impl HostSpec {
    pub fn new(name: &str) -> Self {
        HostSpec {
            name: name.to_string(),
            aliases: Vec::new(),
            outbound_only: false,
        }
    }

    pub fn alias(mut self, name: &str) -> Self {
        self.aliases.push(name.to_string());
        self
    }

    pub fn outbound_only(mut self) -> Self {
        self.outbound_only = true;
        self
    }
}

/// A host of the topology.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// The network namespace (`ip netns exec <ns> ...`).
    pub ns: String,
    pub ip: Ipv4Addr,
}

/// Hosts in network namespaces; dropped, it removes them.
pub struct Topology {
    hub: String,
    hosts: Vec<Host>,
    names: Vec<(String, Ipv4Addr)>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Topology {
    /// Creates the hosts (at most 200), joined on one segment, with each other's names.
    pub fn build(specs: &[HostSpec]) -> anyhow::Result<Topology> {
        if specs.is_empty() || specs.len() > 200 {
            bail!("a topology has 1 to 200 hosts");
        }
        preflight()?;
        remove_stale();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut topo = Topology {
            hub: format!("{id}-hub"),
            hosts: Vec::new(),
            names: Vec::new(),
        };
        // From here on, Drop cleans up whatever was made, also on error.
        add_netns(&topo.hub)?;
        ip(&["-n", &topo.hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &topo.hub, "link", "set", "br0", "up"])?;
        for (i, spec) in specs.iter().enumerate() {
            let ns = format!("{id}-h{i}");
            let addr = Ipv4Addr::new(10, 250, 0, u8::try_from(i + 1)?);
            topo.hosts.push(Host {
                name: spec.name.clone(),
                ns: ns.clone(),
                ip: addr,
            });
            add_netns(&ns)?;
            let port = format!("v{i}");
            ip(&[
                "link", "add", "name", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &topo.hub,
            ])?;
            ip(&["-n", &topo.hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &topo.hub, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            topo.names.push((spec.name.clone(), addr));
            for a in &spec.aliases {
                topo.names.push((a.clone(), addr));
            }
            if spec.outbound_only {
                firewall_outbound_only(&ns)?;
            }
        }
        topo.write_hosts_files()?;
        Ok(topo)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        match self.hosts.iter().find(|h| h.name == name) {
            Some(h) => h,
            None => panic!("no host {name} in this topology"),
        }
    }

    /// The address `name` (a host name or alias) resolves to.
    pub fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    fn write_hosts_files(&self) -> anyhow::Result<()> {
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
        for (name, addr) in &self.names {
            text.push_str(&format!("{addr} {name}\n"));
        }
        for h in &self.hosts {
            let dir = PathBuf::from(ETC_NETNS).join(&h.ns);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(dir.join("hosts"), &text)?;
        }
        Ok(())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for h in &self.hosts {
            remove_netns(&h.ns);
        }
        remove_netns(&self.hub);
    }
}

impl Host {
    /// `program` run on this host (`ip netns exec`), so it sees this host's network and
    /// `/etc/hosts`. Killed when the returned child is dropped.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c.kill_on_drop(true);
        c
    }

    /// A runtime whose sockets live on this host: tasks spawned on it connect from, and
    /// listen on, this host. Names are not resolved through the host's `/etc/hosts` here;
    /// use [`Topology::resolve`].
    pub fn runtime(&self) -> anyhow::Result<HostRuntime> {
        HostRuntime::start(&self.ns)
    }

    /// `addr:port` of this host.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip, port))
    }
}

/// A single-threaded runtime on a thread that entered a host's network namespace.
pub struct HostRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostRuntime {
    fn start(ns: &str) -> anyhow::Result<HostRuntime> {
        let path = PathBuf::from(NETNS_DIR).join(ns);
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("netns-{ns}"))
            .spawn(move || {
                // SAFETY: setns with a valid descriptor of a network namespace changes only
                // this thread's namespace; the file outlives the call.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    let _ = ready_tx.send(Err(anyhow::anyhow!(
                        "setns: {}",
                        std::io::Error::last_os_error()
                    )));
                    return;
                }
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(rt.handle().clone()));
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let handle = ready_rx
            .recv()
            .context("the namespace thread ended before starting")??;
        Ok(HostRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `future` on this host; await the handle from any runtime.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

impl Drop for HostRuntime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn preflight() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("test hosts need network namespaces, which need root (CI runs as root)");
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool).arg("-V").output().is_ok();
        if !found {
            bail!("test hosts need `{tool}` (Debian package {package}; scripts/test installs it)");
        }
    }
    Ok(())
}

fn add_netns(ns: &str) -> anyhow::Result<()> {
    ip(&["netns", "add", ns]).with_context(|| {
        format!("creating network namespace {ns} (is this a container without CAP_SYS_ADMIN?)")
    })?;
    ip(&["-n", ns, "link", "set", "lo", "up"])
}

fn remove_netns(ns: &str) {
    // Whatever still runs there (a daemon's forked workers, a test's leftovers) goes too.
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
    let _ = std::fs::remove_dir_all(PathBuf::from(ETC_NETNS).join(ns));
}

/// Namespaces of test processes that no longer run (a killed `cargo test`).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            remove_netns(&name);
        }
    }
}

/// New incoming connections are dropped; loopback and replies pass.
fn firewall_outbound_only(ns: &str) -> anyhow::Result<()> {
    let rules = "table inet burrow_test {\n\
        chain input {\n\
          type filter hook input priority 0; policy drop;\n\
          iif lo accept\n\
          ct state established,related accept\n\
        }\n\
      }\n";
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(rules.as_bytes())?;
            }
            child.wait_with_output()
        })
        .context("running nft")?;
    if !out.status.success() {
        bail!(
            "nft in {ns}: {} (does the kernel have nf_tables and conntrack?)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
