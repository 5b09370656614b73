//! The per-user secret that authenticates cache entries, and HMAC-SHA256.
//!
//! Invariants: the key file is 32 random bytes, a regular file owned by this
//! user with no group or other permission bits, never reached through a
//! link. It is created under a random temporary name (`O_CREAT|O_EXCL|
//! O_NOFOLLOW`, mode 0600) and published with `link`, which fails if a key
//! already exists: two processes starting together agree on one key, and
//! nobody ever reads a half-written one.

use std::fmt;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{bail, Context};
use rustix::fs::AtFlags;
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::safe_fs;

/// The key file's name inside the cache directory.
pub const KEY_FILE: &str = "mac.key";
const KEY_LEN: usize = 32;
const BLOCK: usize = 64;

/// A 32-byte secret; never printed.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// Reads the key in `dir` (shown as `dir_path`), creating it first if
    /// there is none. Refuses a key that is a link, not this user's, readable
    /// by group or others, or not exactly 32 bytes.
    pub fn load_or_create(dir: &OwnedFd, dir_path: &Path) -> anyhow::Result<Key> {
        let shown = dir_path.join(KEY_FILE);
        match read(dir, &shown) {
            Err(e)
                if e.downcast_ref::<std::io::Error>().map(|e| e.kind())
                    == Some(std::io::ErrorKind::NotFound) => {}
            other => return other,
        }
        create(dir).with_context(|| format!("cannot create {}", shown.display()))?;
        read(dir, &shown)
    }

    /// HMAC-SHA256 of the concatenation of `parts` under this key.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut pad = [0u8; BLOCK];
        pad[..KEY_LEN].copy_from_slice(&self.0);
        let mut inner = Sha256::new();
        inner.update(pad.map(|b| b ^ 0x36));
        for p in parts {
            inner.update(p);
        }
        let mut outer = Sha256::new();
        outer.update(pad.map(|b| b ^ 0x5c));
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// Compares two tags in time independent of where they differ.
pub fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read(dir: &OwnedFd, shown: &Path) -> anyhow::Result<Key> {
    let (mut f, meta) = safe_fs::open_private_file(dir, KEY_FILE, shown, true)?;
    if meta.len() != KEY_LEN as u64 {
        bail!(
            "{}: is {} bytes, a key is {KEY_LEN}",
            shown.display(),
            meta.len()
        );
    }
    let mut key = [0u8; KEY_LEN];
    f.read_exact(&mut key)
        .with_context(|| format!("cannot read {}", shown.display()))?;
    Ok(Key(key))
}

/// Writes a new random key under a temporary name and links it into place
/// unless another process did first.
fn create(dir: &OwnedFd) -> anyhow::Result<()> {
    let key = safe_fs::random_bytes::<KEY_LEN>()?;
    let tmp = safe_fs::random_name(".key-")?;
    let mut f = safe_fs::create_new_private(dir, &tmp)?;
    let written = f.write_all(&key).and_then(|()| f.sync_all());
    let linked = written.map_err(anyhow::Error::from).and_then(|()| {
        match rustix::fs::linkat(dir, &tmp, dir, KEY_FILE, AtFlags::empty()) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    });
    let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC pads a short key with zeros to the block size, so RFC 4231's
    /// short keys zero-padded to 32 bytes are the same keys.
    fn mac_with(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut k = [0u8; KEY_LEN];
        k[..key.len()].copy_from_slice(key);
        Key(k).mac(&[data])
    }

    #[test]
    fn hmac_sha256_matches_rfc4231() {
        // Test case 2: key "Jefe".
        let tag = mac_with(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 1: key 0x0b * 20.
        let tag = mac_with(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(tag),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn parts_are_concatenated_and_tags_compare() {
        let k = Key([7; KEY_LEN]);
        assert_eq!(k.mac(&[b"ab", b"c"]), k.mac(&[b"abc"]));
        assert_ne!(k.mac(&[b"abc"]), Key([8; KEY_LEN]).mac(&[b"abc"]));
        assert!(tags_equal(&[1, 2], &[1, 2]));
        assert!(!tags_equal(&[1, 2], &[1, 3]));
        assert!(!tags_equal(&[1, 2], &[1]));
    }
}
