//! The host never follows a link it did not create, and its compiled-module
//! cache runs only what this user's host compiled (issue 12, classes 5, 6).
//!
//! The attacker: a guest with a writable grant, which plants links there
//! (`tests/hostile/plant_symlink.wat`, WASI `path_symlink`), or anyone who
//! can write the cache directory.

mod common;

use std::os::unix::fs::{symlink, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cli::{self, arg};
use common::guard::within;
use wasm_app::formats::create_output;
use wasm_app::{DirGrant, Plugin, Policy, StringAbi};

const SECRET: &str = "the host's secret, not the guest's to write";

fn rw_grant(dir: &Path) -> Policy {
    Policy {
        dirs: vec![DirGrant {
            host: dir.to_path_buf(),
            guest: Some("/data".into()),
            writable: true,
        }],
        ..Policy::default()
    }
}

/// A folder holding `secret.txt` and `data/`, the guest's writable grant.
fn workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let top = tempfile::tempdir().expect("tempdir");
    let secret = top.path().join("secret.txt");
    std::fs::write(&secret, SECRET).expect("write secret");
    let data = top.path().join("data");
    std::fs::create_dir(&data).expect("mkdir data");
    (top, secret, data)
}

/// Runs the hostile guest with `data` granted read-write: it creates the
/// link `link -> target` there through WASI, as any guest could.
fn plant(data: &Path, target: &str, link: &str) {
    let m = common::runtime()
        .load(common::hostile_path("plant_symlink.wat"), rw_grant(data))
        .expect("load plant_symlink.wat");
    let errno = Plugin::new(m)
        .greet(StringAbi::Rust, &format!("{target}>{link}"))
        .expect("plant");
    assert_eq!(errno, "00", "path_symlink({target}, {link}) failed");
    let planted = std::fs::read_link(data.join(link)).expect("the guest made a link");
    assert_eq!(planted, Path::new(target));
}

/// A FIFO (named pipe) at `path`: opening it for writing blocks until a
/// reader comes.
fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
}

fn assert_refused(result: std::io::Result<std::fs::File>, path: &Path, why: &str) {
    let e = result.expect_err("must be refused");
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(why), "expected '{why}' in: {msg}");
}

#[test]
fn a_planted_file_link_is_never_written_through() {
    let (_top, secret, data) = workspace();
    plant(&data, "../secret.txt", "out.csv");
    let out = data.join("out.csv");
    assert_refused(create_output(&out), &out, "symbolic link");
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), SECRET);
    // A dangling planted link is not created through either.
    plant(&data, "../new.txt", "new.csv");
    let new = data.join("new.csv");
    assert_refused(create_output(&new), &new, "symbolic link");
    assert!(!secret.with_file_name("new.txt").exists());
}

#[test]
fn a_planted_directory_link_is_never_walked_through() {
    let (top, secret, data) = workspace();
    plant(&data, "..", "sub");
    let via = data.join("sub/secret.txt");
    assert_refused(create_output(&via), &via, "symbolic link 'sub'");
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), SECRET);
    // An absolute directory link (`data/etc -> /etc`), deeper in the path.
    std::fs::create_dir(data.join("a")).expect("mkdir");
    symlink(top.path(), data.join("a/etc")).expect("symlink");
    let via = data.join("a/etc/secret.txt");
    assert_refused(create_output(&via), &via, "symbolic link 'etc'");
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), SECRET);
}

#[test]
fn a_hard_link_into_another_file_is_not_truncated() {
    let (_top, secret, data) = workspace();
    let out = data.join("out.csv");
    std::fs::hard_link(&secret, &out).expect("hard link");
    assert_refused(create_output(&out), &out, "2 hard links");
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), SECRET);
}

#[test]
fn a_fifo_or_device_as_output_is_refused_without_blocking() {
    let (_top, _secret, data) = workspace();
    let fifo = data.join("out.csv");
    mkfifo(&fifo);
    // No reader: a blocking open would wait forever.
    let start = Instant::now();
    assert_refused(create_output(&fifo), &fifo, "not a regular file");
    // With a reader the open succeeds; the type check still refuses it.
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(&fifo)
        .expect("open the FIFO's read end");
    assert_refused(create_output(&fifo), &fifo, "not a regular file");
    let dev = Path::new("/dev/null");
    assert_refused(create_output(dev), dev, "not a regular file");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn ordinary_outputs_are_created_and_truncated() {
    let (_top, _secret, data) = workspace();
    let out = data.join("out.csv");
    use std::io::Write;
    create_output(&out)
        .expect("create")
        .write_all(b"a long first version")
        .expect("write");
    create_output(&out)
        .expect("truncate")
        .write_all(b"short")
        .expect("write");
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "short");
    // `..` in the path is resolved on the real directories.
    let up = data.join("x/../out2.csv");
    std::fs::create_dir(data.join("x")).expect("mkdir");
    create_output(&up).expect("create through ..");
    assert!(data.join("out2.csv").is_file());
}

// ---------------------------------------------------------------------------
// Through the CLI: `process -o` uses `create_output`
// ---------------------------------------------------------------------------

/// `process --command echo` of a small CSV into `out`.
fn echo_to(top: &Path, out: &Path) -> std::process::Output {
    let input = top.join("in.csv");
    std::fs::write(&input, "a,b\n1,x\n2,y\n").expect("write input");
    cli::process(
        "echo",
        &[arg(&input), "-o", arg(out), "--quiet"],
        &top.join("cache"),
    )
}

/// One `error: ...` line naming `path` and `why`, exit status 1.
fn assert_cli_refused(o: &std::process::Output, path: &Path, why: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains(why), "expected '{why}' in: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn cli_output_through_links_a_guest_planted_is_refused() {
    let (top, secret, data) = workspace();
    let grant = format!("{}::/data", data.display());
    let plant = |link: &str| {
        let o = cli::wasm_app(
            &[
                "greet",
                "--module",
                arg(&common::hostile_path("plant_symlink.wat")),
                "--dir-rw",
                &grant,
                link,
            ],
            &top.path().join("cache"),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "00\n");
    };
    plant("../secret.txt>out.csv");
    plant("..>sub");
    let out = data.join("out.csv");
    assert_cli_refused(&echo_to(top.path(), &out), &out, "symbolic link");
    let via = data.join("sub/secret.txt");
    assert_cli_refused(&echo_to(top.path(), &via), &via, "symbolic link 'sub'");
    assert_eq!(std::fs::read_to_string(&secret).expect("secret"), SECRET);
    // The same command to a plain path works.
    let plain = data.join("plain.csv");
    let o = echo_to(top.path(), &plain);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&plain).expect("output"),
        "a,b\n1,x\n2,y\n"
    );
}

#[test]
fn cli_output_to_a_fifo_fails_instead_of_hanging() {
    let (top, _secret, data) = workspace();
    let fifo = data.join("out.csv");
    mkfifo(&fifo);
    // Run in a thread so a hang fails the test instead of stalling it.
    let (t, f) = (top.path().to_path_buf(), fifo.clone());
    let o = within(
        Duration::from_secs(60),
        "wasm-app opening a FIFO",
        move || echo_to(&t, &f),
    );
    assert_cli_refused(&o, &fifo, "not a regular file");
}
