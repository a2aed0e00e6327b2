//! The agent's Debian package, installed into a throwaway Debian root: `scripts/package agent`
//! packages this test run's own `burrow-agent` binary, `dpkg -i` installs it into a bookworm
//! root made with `debootstrap --variant=minbase` (plus systemd, so the unit can be verified
//! where it is installed), and the test checks the files and their modes, the system user,
//! the unit (`systemd-analyze verify`), a reinstall, and removal and purge.
//!
//! Needs root (chroot) and, on the first run, deb.debian.org; the root is cached as a tarball
//! in the target directory, so later runs take seconds. Not root: the test fails, unless
//! `BURROW_TEST_SKIP_DEB=1` says to skip it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{shown}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chroot(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("chroot");
    c.arg(root).args(args).env("LC_ALL", "C");
    c
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The workspace root (scripts/package lives there).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A minbase bookworm root with systemd, made once and kept as a tarball next to the build.
fn root_tarball(cache_dir: &Path) -> PathBuf {
    let tarball = cache_dir.join(format!("{SUITE}-minbase-systemd.tar"));
    if tarball.exists() {
        return tarball;
    }
    std::fs::create_dir_all(cache_dir).unwrap();
    let staging = tempfile::tempdir_in(cache_dir).unwrap();
    let root = staging.path().join("root");
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "--include=systemd", SUITE])
        .arg(&root)
        .arg(MIRROR));
    // Written aside and renamed: a run interrupted half-way leaves no broken cache.
    let partial = staging.path().join("root.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&partial)
        .arg("."));
    std::fs::rename(&partial, &tarball).unwrap();
    tarball
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn agent_deb_installs_into_a_fresh_debian_root() {
    if std::env::var("BURROW_TEST_SKIP_DEB").as_deref() == Ok("1") {
        eprintln!("skipped: BURROW_TEST_SKIP_DEB=1");
        return;
    }
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        stdout(&uid).trim(),
        "0",
        "this test installs a package into a chroot and must run as root \
         (set BURROW_TEST_SKIP_DEB=1 to skip it)"
    );
    assert!(
        Command::new("debootstrap")
            .arg("--version")
            .output()
            .is_ok(),
        "debootstrap is missing: apt-get install debootstrap (scripts/test does)"
    );

    let exe = Path::new(env!("CARGO_BIN_EXE_burrow-agent"));
    let bin_dir = exe.parent().unwrap();
    let target_dir = bin_dir.parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // The package, from this build's binary (a release build would take minutes).
    let out_dir = tmp.path().join("out");
    let built = run(Command::new(workspace().join("scripts/package"))
        .args(["agent", "--fast", "--bin-dir"])
        .arg(bin_dir)
        .arg("--out")
        .arg(&out_dir));
    let deb = PathBuf::from(stdout(&built).trim());
    assert!(deb.starts_with(&out_dir), "{deb:?}");
    let info = stdout(&run(Command::new("dpkg-deb").arg("--field").arg(&deb)));
    assert!(info.contains("Package: burrow-agent\n"), "{info}");
    assert!(
        info.contains(&format!("Version: {}\n", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );

    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let tarball = root_tarball(&target_dir.join("debootstrap"));
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-xf")
        .arg(&tarball));
    std::fs::copy(&deb, root.join("tmp/pkg.deb")).unwrap();

    // Install: no systemd runs in the chroot, which the maintainer scripts must take.
    run(&mut chroot(&root, &["dpkg", "-i", "/tmp/pkg.deb"]));

    let version = stdout(&run(&mut chroot(&root, &["burrow-agent", "--version"])));
    assert_eq!(
        version.trim(),
        format!("burrow-agent {}", env!("CARGO_PKG_VERSION"))
    );

    let user = stdout(&run(&mut chroot(
        &root,
        &["getent", "passwd", "burrow-agent"],
    )));
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(fields.len(), 7, "{user}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "not a system user: {user}");
    assert_eq!(fields[5], "/var/lib/burrow-agent", "{user}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{user}");

    for (path, want) in [
        ("usr/bin/burrow-agent", 0o755),
        ("usr/lib/systemd/system/burrow-agent.service", 0o644),
        ("etc/burrow/agent.env", 0o644),
        ("var/lib/burrow-agent", 0o700),
    ] {
        assert_eq!(mode(&root.join(path)), want, "mode of /{path}");
    }
    let state = std::fs::metadata(root.join("var/lib/burrow-agent")).unwrap();
    assert_eq!(state.uid(), uid, "owner of /var/lib/burrow-agent");
    assert_eq!(
        std::fs::read_link(root.join("etc/burrow-agent")).unwrap(),
        Path::new("/var/lib/burrow-agent")
    );
    let conffiles = stdout(&run(&mut chroot(
        &root,
        &["dpkg-query", "-W", "-f=${Conffiles}", "burrow-agent"],
    )));
    assert!(conffiles.contains("/etc/burrow/agent.env"), "{conffiles}");

    // The unit, as the installed system's systemd reads it: ExecStart's binary included.
    let verify = run(&mut chroot(
        &root,
        &["systemd-analyze", "verify", "burrow-agent.service"],
    ));
    assert!(
        verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify complained:\n{}{}",
        stdout(&verify),
        String::from_utf8_lossy(&verify.stderr)
    );
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/burrow-agent.service")).unwrap();
    for line in [
        "User=burrow-agent",
        "StateDirectory=burrow-agent",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "CapabilityBoundingSet=\n",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(line), "unit lacks {line:?}");
    }

    // Enabled, reinstalled (an upgrade's path through the scripts), removed, purged.
    run(&mut chroot(&root, &["systemctl", "enable", "burrow-agent"]));
    let wants = root.join("etc/systemd/system/multi-user.target.wants/burrow-agent.service");
    assert!(wants.symlink_metadata().is_ok(), "enable made no symlink");
    run(&mut chroot(&root, &["dpkg", "-i", "/tmp/pkg.deb"]));
    std::fs::write(
        root.join("var/lib/burrow-agent/agent.toml"),
        "dsn = \"X\"\n",
    )
    .unwrap();

    run(&mut chroot(&root, &["dpkg", "-r", "burrow-agent"]));
    assert!(!root.join("usr/bin/burrow-agent").exists());
    assert!(!root
        .join("usr/lib/systemd/system/burrow-agent.service")
        .exists());
    assert!(wants.symlink_metadata().is_err(), "removal left {wants:?}");
    // Removal keeps the configuration and the enrollment; purge deletes both.
    assert!(root.join("etc/burrow/agent.env").exists());
    assert!(root.join("var/lib/burrow-agent/agent.toml").exists());

    run(&mut chroot(&root, &["dpkg", "--purge", "burrow-agent"]));
    assert!(!root.join("etc/burrow/agent.env").exists());
    assert!(!root.join("var/lib/burrow-agent").exists());
    assert!(root.join("etc/burrow-agent").symlink_metadata().is_err());
    let status = chroot(&root, &["dpkg-query", "-W", "burrow-agent"])
        .output()
        .unwrap();
    assert!(!status.status.success(), "dpkg still knows burrow-agent");
}
