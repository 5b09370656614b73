//! Opening the files the host itself writes (outputs, the compiled-module
//! cache) without following a link it did not create.
//!
//! A guest with a writable grant can create symbolic links anywhere inside it
//! (WASI `path_symlink`), and they outlive the run: `data/out.csv ->
//! ../secret.txt`, `data/sub -> ..`. A host that later opened `data/out.csv`
//! or `data/sub/x` by path would write wherever the guest pointed. So paths
//! are resolved here one component at a time from a held directory
//! descriptor (`openat` with `O_NOFOLLOW`), and:
//!
//! - the last component is never followed: a link there is refused;
//! - a link in a parent directory is followed only if the directory holding
//!   it is not writable by this user and writable by nobody but its owner
//!   (root's `/var/run -> /run`): a guest writes as this user, so it cannot
//!   have planted such a link, nor can another user. Any other link is
//!   refused, naming the path, the link and why;
//! - an output must be a regular file with a single link: a FIFO or device
//!   is refused without blocking (opened `O_NONBLOCK`, then `fstat`), and a
//!   hard link (which a guest can make between two of its grants) is refused
//!   before anything is truncated.
//!
//! Unix only, like the rest of the host's file handling.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use rustix::fs::{Access, AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

/// Links followed while resolving one path, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// Directories are opened only to walk through them: `O_PATH` on Linux needs
/// no read permission (a `--x` directory can be crossed, as by `open`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_ACCESS: OFlags = OFlags::PATH;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_ACCESS: OFlags = OFlags::RDONLY;

const DIR_FLAGS: OFlags = DIR_ACCESS
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Creates (or truncates) the output file `path` for writing.
///
/// Refuses, with an error naming `path` and the reason: a symbolic link as
/// the file itself, a link in a parent directory that this user (hence a
/// guest) or another user could have planted, a FIFO, socket or device, and
/// a file with more than one hard link. Never blocks on a FIFO.
pub fn create_output(path: &Path) -> io::Result<File> {
    let Some(name) = path.file_name() else {
        return Err(refused(path, "does not end in a file name"));
    };
    let parent = path.parent().unwrap_or(Path::new(""));
    let dir = resolve_dir(path, parent, false)?;
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::NONBLOCK
        | OFlags::NOCTTY
        | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(&dir, name, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => fd,
        Err(_) if is_link(&dir, name) => {
            return Err(refused(
                path,
                "is a symbolic link; the host never writes through a link (a guest with a \
                 writable grant can plant one)",
            ))
        }
        Err(Errno::NXIO) => {
            return Err(refused(path, "is a FIFO or socket, not a regular file"));
        }
        Err(e) => return Err(with_path(path, e.into())),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused(
            path,
            "is not a regular file (a FIFO, socket or device); outputs are regular files",
        ));
    }
    if meta.nlink() > 1 {
        return Err(refused(
            path,
            &format!(
                "has {} hard links; the host writes only a file with one name (a guest can \
                 link a file of one grant into another)",
                meta.nlink()
            ),
        ));
    }
    file.set_len(0).map_err(|e| with_path(path, e))?;
    let flags = rustix::fs::fcntl_getfl(&file)?;
    rustix::fs::fcntl_setfl(&file, flags.difference(OFlags::NONBLOCK))?;
    Ok(file)
}

/// Opens the directory `path` for the host's private use (the compiled-module
/// cache), creating missing components with mode 0700 if `create`.
///
/// Refuses a directory that is itself a symbolic link, that is reached
/// through an untrusted link (see the module doc), that another user owns,
/// or that group or others may write.
pub(crate) fn open_private_dir(path: &Path, create: bool) -> io::Result<OwnedFd> {
    let fd = resolve_dir(path, path, create)?;
    let meta = metadata(&fd)?;
    check_private(path, &meta, 0o022, "written")?;
    Ok(fd)
}

/// Creates `name` in `dir` with mode 0600, never following a link and never
/// reusing an existing file (`O_CREAT|O_EXCL|O_NOFOLLOW`).
pub(crate) fn create_new_private(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::openat(
        dir,
        name,
        flags,
        Mode::from_raw_mode(0o600),
    )?))
}

/// Opens `name` in `dir` for reading: a regular file owned by this user that
/// group and others cannot write (nor read, if `secret`), never through a
/// link. `shown` names it in errors.
pub(crate) fn open_private_file(
    dir: &OwnedFd,
    name: &str,
    shown: &Path,
    secret: bool,
) -> io::Result<(File, Metadata)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(_) if is_link(dir, name) => {
            return Err(refused(shown, "is a symbolic link"));
        }
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused(shown, "is not a regular file"));
    }
    if secret {
        check_private(shown, &meta, 0o077, "read")?;
    } else {
        check_private(shown, &meta, 0o022, "written")?;
    }
    Ok((file, meta))
}

/// The first `max + 1` bytes (at most) of `path`, a regular file: a FIFO
/// is opened non-blocking and refused, so neither the open nor the read can
/// wait for ever; the caller tells "more than `max`" by the length.
pub(crate) fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(max) as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `n` bytes from the kernel's random source.
pub(crate) fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read /dev/urandom: {e}")))?;
    Ok(buf)
}

/// A fresh name for a temporary file: `prefix` and 128 random bits.
pub(crate) fn random_name(prefix: &str) -> io::Result<String> {
    Ok(format!("{prefix}{}", hex::encode(random_bytes::<16>()?)))
}

/// (device, inode) of `dir` and of each of its ancestors up to `/`.
pub(crate) fn ancestry(dir: &OwnedFd) -> io::Result<Vec<(u64, u64)>> {
    let mut chain = Vec::new();
    let meta = metadata(dir)?;
    let mut id = (meta.dev(), meta.ino());
    let mut cur = rustix::fs::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
    // Bounded: a path has far fewer components than this.
    for _ in 0..4096 {
        chain.push(id);
        let up = rustix::fs::openat(&cur, "..", DIR_FLAGS, Mode::empty())?;
        let m = metadata(&up)?;
        let up_id = (m.dev(), m.ino());
        if up_id == id {
            return Ok(chain);
        }
        id = up_id;
        cur = up;
    }
    Err(io::Error::other("directory nesting too deep"))
}

/// Opens `path`, a directory, following links as any program would (as a
/// WASI preopen does): for comparing what a grant names with the cache.
pub(crate) fn open_dir_following(path: &Path) -> io::Result<OwnedFd> {
    let flags = DIR_ACCESS | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(CWD, path, flags, Mode::empty())?)
}

fn metadata(fd: &OwnedFd) -> io::Result<Metadata> {
    File::from(fd.try_clone()?).metadata()
}

/// The file must be this user's, with none of `forbidden` mode bits.
fn check_private(shown: &Path, meta: &Metadata, forbidden: u32, verb: &str) -> io::Result<()> {
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refused(
            shown,
            &format!("is owned by user {}, not by this user ({me})", meta.uid()),
        ));
    }
    if meta.mode() & forbidden != 0 {
        return Err(refused(
            shown,
            &format!(
                "has mode {:o}: group or others may have {verb} it",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Resolves `dir_path` (a prefix of `path`, which names it in errors) to a
/// directory descriptor, following only trusted links in parents; with
/// `create`, missing directories are made with mode 0700. The last component
/// of `dir_path` is never followed if it is `path` itself.
fn resolve_dir(path: &Path, dir_path: &Path, create: bool) -> io::Result<OwnedFd> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    }
    let last_is_target = dir_path == path;
    let mut todo: Vec<Part> = Vec::new();
    push_parts(&mut todo, dir_path)?;
    let mut cur = if dir_path.is_absolute() {
        open_root()?
    } else {
        rustix::fs::openat(CWD, ".", DIR_FLAGS, Mode::empty())?
    };
    let mut links = 0;
    while let Some(part) = todo.pop() {
        let (name, is_target) = match part {
            Part::Root => {
                cur = open_root()?;
                continue;
            }
            Part::Parent => {
                cur = rustix::fs::openat(&cur, "..", DIR_FLAGS, Mode::empty())?;
                continue;
            }
            Part::Name(name, last) => (name, last && last_is_target),
        };
        let err = match rustix::fs::openat(&cur, &name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => {
                cur = fd;
                continue;
            }
            Err(e) => e,
        };
        if let Ok(target) = rustix::fs::readlinkat(&cur, &name, Vec::new()) {
            let link = Path::new(&name).display();
            if is_target {
                return Err(refused(path, "is a symbolic link"));
            }
            if !trusted_link_dir(&cur)? {
                return Err(refused(
                    path,
                    &format!(
                        "goes through the symbolic link '{link}' in a directory this user (or \
                         a guest with a writable grant, or another user) can write; give the \
                         path without links"
                    ),
                ));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(refused(path, "has too many levels of symbolic links"));
            }
            let target: OsString = std::os::unix::ffi::OsStringExt::from_vec(target.into_bytes());
            push_parts(&mut todo, Path::new(&target))?;
            continue;
        }
        if err == Errno::NOENT && create {
            match rustix::fs::mkdirat(&cur, &name, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(with_path(path, e.into())),
            }
            // Opened again with O_NOFOLLOW: a link raced in is refused.
            cur = rustix::fs::openat(&cur, &name, DIR_FLAGS, Mode::empty())
                .map_err(|e| with_path(path, e.into()))?;
            continue;
        }
        return Err(with_path(path, err.into()));
    }
    Ok(cur)
}

enum Part {
    Root,
    Parent,
    /// A name, and whether it is the last component of the original path.
    Name(OsString, bool),
}

/// Pushes `path`'s components onto the stack `todo` (last popped first).
fn push_parts(todo: &mut Vec<Part>, path: &Path) -> io::Result<()> {
    let original = todo.is_empty();
    let mut parts = Vec::new();
    for c in path.components() {
        parts.push(match c {
            Component::RootDir => Part::Root,
            Component::CurDir => continue,
            Component::ParentDir => Part::Parent,
            Component::Normal(n) => Part::Name(n.to_os_string(), false),
            Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path prefixes are not supported",
                ))
            }
        });
    }
    if original {
        if let Some(Part::Name(_, last)) = parts.last_mut() {
            *last = true;
        }
    }
    todo.extend(parts.into_iter().rev());
    Ok(())
}

fn open_root() -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(CWD, "/", DIR_FLAGS, Mode::empty())?)
}

fn is_link(dir: &OwnedFd, name: impl rustix::path::Arg) -> bool {
    rustix::fs::readlinkat(dir, name, Vec::new()).is_ok()
}

/// Whether a link in `dir` can be trusted: neither this user (so no guest)
/// nor, by its mode, anyone but its owner can write `dir`.
fn trusted_link_dir(dir: &OwnedFd) -> io::Result<bool> {
    if metadata(dir)?.mode() & 0o022 != 0 {
        return Ok(false);
    }
    Ok(
        match rustix::fs::accessat(dir, ".", Access::WRITE_OK, AtFlags::EACCESS) {
            Ok(()) => false,
            Err(e) => matches!(e, Errno::ACCESS | Errno::PERM | Errno::ROFS),
        },
    )
}

fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: {why}", path.display()),
    )
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
