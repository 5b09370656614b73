//! Directory grants checked against each other when a module is loaded.
//!
//! WASI opens each granted directory by its path, following links, every
//! time an instance is made. A grant that lies inside a *writable* grant is
//! therefore the guest's to redirect: it can replace `data/sub` (granted on
//! its own) by a link to any folder, and the next instance is handed that
//! folder. So a grant may not lie inside a writable grant, whether its path
//! goes through it (`data/sub`) or the folder it names is inside it now.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::safe_fs;

/// Refuses a policy where one directory grant lies inside a writable one.
pub(crate) fn check_nesting(policy: &Policy) -> Result<()> {
    for outer in policy.dirs.iter().filter(|d| d.writable) {
        let Some(outer_id) = identity(&outer.host) else {
            continue;
        };
        let outer_path = absolute(&outer.host);
        for inner in &policy.dirs {
            if std::ptr::eq(inner, outer) {
                continue;
            }
            let through = absolute(&inner.host).starts_with(&outer_path)
                && absolute(&inner.host) != outer_path;
            let inside =
                chain(&inner.host).is_some_and(|c| c.len() > 1 && c[1..].contains(&outer_id));
            if through || inside {
                return Err(Error::PolicyDenied(format!(
                    "the policy grants {} inside the writable grant {}: the module could \
                     replace it with a link to any folder; grant the outer folder only, or \
                     folders side by side",
                    inner.host.display(),
                    outer.host.display()
                )));
            }
        }
    }
    Ok(())
}

/// `path` made absolute without touching the file system (no links followed).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// (device, inode) of the folder `path` names now and of its ancestors.
fn chain(path: &Path) -> Option<Vec<(u64, u64)>> {
    let fd = safe_fs::open_dir_following(path).ok()?;
    safe_fs::ancestry(&fd).ok()
}

/// (device, inode) of the folder `path` names now.
fn identity(path: &Path) -> Option<(u64, u64)> {
    chain(path).and_then(|c| c.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DirGrant;

    fn policy(grants: &[(&Path, bool)]) -> Policy {
        let mut p = Policy::default();
        for (host, writable) in grants {
            p.dirs.push(DirGrant {
                host: host.to_path_buf(),
                guest: None,
                writable: *writable,
            });
        }
        p
    }

    #[test]
    fn a_grant_inside_a_writable_grant_is_refused() {
        let top = tempfile::tempdir().expect("temp dir");
        let data = top.path().join("data");
        let sub = data.join("sub");
        let side = top.path().join("side");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::create_dir_all(&side).expect("mkdir");
        let err = check_nesting(&policy(&[(&data, true), (&sub, false)]));
        assert!(
            matches!(&err, Err(Error::PolicyDenied(m)) if m.contains("inside the writable grant")),
            "{err:?}"
        );
        // Through a link that already points elsewhere: the path still runs
        // through the writable grant, which can re-point the link.
        let link = data.join("elsewhere");
        std::os::unix::fs::symlink(&side, &link).expect("symlink");
        assert!(check_nesting(&policy(&[(&data, true), (&link, false)])).is_err());
        // Side by side, or nested in a read-only grant: fine.
        assert!(check_nesting(&policy(&[(&data, true), (&side, true)])).is_ok());
        assert!(check_nesting(&policy(&[(&data, false), (&sub, false)])).is_ok());
        assert!(check_nesting(&policy(&[(&data, true)])).is_ok());
    }
}
