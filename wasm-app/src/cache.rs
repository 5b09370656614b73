//! On-disk cache of compiled modules and components.
//!
//! Deserializing a compiled module is hundreds of times cheaper than
//! compiling it, but `Module::deserialize` (and `Component::deserialize`)
//! trusts its input completely: an entry *is* native code. So a cache entry
//! is never handed to it unless this user's host wrote it:
//!
//! - the file name is the SHA-256 of the kind (core module or component,
//!   `cache/artifact.rs`), of the module bytes *and* of the engine's
//!   compatibility hash (wasmtime version, compiler settings, target), so a
//!   changed module or engine configuration never finds a stale entry, and
//!   one kind never finds the other's;
//! - the entry starts with a magic, then an HMAC-SHA256 of the kind, that
//!   name and the payload under a per-user secret (`cache/key.rs`), checked
//!   before deserializing: a corrupt entry, one forged without the key, or
//!   one copied from another module's (or kind's) name is ignored and
//!   rebuilt;
//! - the directory must be this user's, not writable by group or others and
//!   not a link (else the host warns and runs without a cache); entries and
//!   temporary files are opened with `O_NOFOLLOW`, temporaries created
//!   `O_EXCL` under random names and renamed into place (`safe_fs.rs`);
//! - a module whose policy grants a directory containing the cache, or
//!   inside it, is refused ([`check_grants`]): it could read the key.
//!
//! Not protected against: this user (or root) writing the key and entries by
//! hand, outside the host.

mod artifact;
mod key;

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustix::fs::AtFlags;
use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::safe_fs;
pub use artifact::{Artifact, ArtifactKind};
use key::{tags_equal, Key};

const MAGIC: &[u8; 8] = b"WAPPCM03";
const HEADER: usize = MAGIC.len() + 32;
/// What the tag covers besides the kind, name and payload: the entry
/// format.
const DOMAIN: &[u8] = b"wasm-app compiled module cache entry v3\0";
/// Larger entries are not read (no compiled module comes near).
const MAX_ENTRY: u64 = 1 << 30;

/// A directory of compiled modules for one engine configuration.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    /// The directory, held open: entries are opened relative to it.
    fd: Arc<OwnedFd>,
    key: Key,
    /// (device, inode) of the directory and its ancestors.
    ancestry: Arc<Vec<(u64, u64)>>,
}

/// Where a module came from, for reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Found and verified in the cache.
    Hit,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
    /// Compiled now because the entry was corrupt; the entry was replaced.
    Rebuilt,
}

/// Feeds wasmtime's compatibility hash into SHA-256.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0 // unused: only `write` matters here
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ModuleCache {
    /// A cache in `dir`, created (mode 0700) if missing, with its key.
    /// Refuses a directory or key that is a link, reached through a link a
    /// guest could have planted, owned by another user, or open to group or
    /// others.
    pub fn new(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        let fd = safe_fs::open_private_dir(&dir, true)
            .with_context(|| format!("cannot use module cache {}", dir.display()))?;
        let key = Key::load_or_create(&fd, &dir)?;
        let ancestry = safe_fs::ancestry(&fd)
            .with_context(|| format!("cannot use module cache {}", dir.display()))?;
        Ok(ModuleCache {
            dir,
            fd: Arc::new(fd),
            key,
            ancestry: Arc::new(ancestry),
        })
    }

    /// As [`ModuleCache::new`], but a cache that cannot be used only costs
    /// speed: warns on stderr (one line) and returns `None`.
    pub fn open_or_warn(dir: &Path) -> Option<Self> {
        match Self::new(dir) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("warning: running without the compiled-module cache: {e:#}");
                None
            }
        }
    }

    /// The default location: `$WASM_APP_CACHE_DIR`, else the user's cache
    /// folder (`$XDG_CACHE_HOME` or `~/.cache`) + `wasm-app`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("WASM_APP_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("wasm-app"))
    }

    /// The entry's identity: `module_sha256` compiled by `engine` as `kind`.
    fn entry_id(engine: &Engine, kind: ArtifactKind, module_sha256: &[u8; 32]) -> [u8; 32] {
        let mut h = ShaHasher(Sha256::new());
        h.write(kind.tag());
        h.write(module_sha256);
        engine.precompile_compatibility_hash().hash(&mut h);
        h.0.finalize().into()
    }

    fn entry_name(id: &[u8; 32]) -> String {
        format!("{}.cwasm", hex::encode(id))
    }

    /// The entry path for `module_sha256` compiled by `engine` as `kind`
    /// (for the cache tests, through `wasm_app::fuzzing`).
    #[cfg(feature = "fuzzing")]
    pub fn entry_path(
        &self,
        engine: &Engine,
        kind: ArtifactKind,
        module_sha256: &[u8; 32],
    ) -> PathBuf {
        self.dir.join(Self::entry_name(&Self::entry_id(
            engine,
            kind,
            module_sha256,
        )))
    }

    /// Loads the module or component from the cache, or compiles it and
    /// stores it.
    pub fn load_or_compile<T: Artifact>(
        &self,
        engine: &Engine,
        module_sha256: &[u8; 32],
        compile: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<(T, CacheOutcome)> {
        let id = Self::entry_id(engine, T::KIND, module_sha256);
        let name = Self::entry_name(&id);
        let mut outcome = CacheOutcome::Compiled;
        match self.read_entry(&name) {
            Ok(bytes) => match verified_payload(&self.key, T::KIND, &id, &bytes) {
                Some(payload) => {
                    // SAFETY: the payload's HMAC under this user's private
                    // key matches, so this cache wrote it from
                    // `T::serialize` of this kind, for this module and this
                    // engine configuration (the tagged kind and name).
                    if let Ok(m) = unsafe { T::deserialize(engine, payload) } {
                        return Ok((m, CacheOutcome::Hit));
                    }
                    outcome = CacheOutcome::Rebuilt;
                }
                None => outcome = CacheOutcome::Rebuilt,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => outcome = CacheOutcome::Rebuilt,
        }
        let module = compile()?;
        // A cache that cannot be written only costs speed: never fail the load.
        let _ = self.store(&id, &name, &module);
        Ok((module, outcome))
    }

    /// The entry's bytes: a regular file of this user's, never via a link.
    fn read_entry(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let shown = self.dir.join(name);
        let (mut f, meta) = safe_fs::open_private_file(&self.fd, name, &shown, false)?;
        if meta.len() > MAX_ENTRY {
            return Err(std::io::Error::other("cache entry too large"));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn store<T: Artifact>(&self, id: &[u8; 32], name: &str, compiled: &T) -> anyhow::Result<()> {
        let payload = compiled.serialize()?;
        let tag = self.key.mac(&[DOMAIN, T::KIND.tag(), id, &payload]);
        // A fresh random name (O_EXCL, no link followed), then rename: readers
        // never see half a file, and nothing planted is written through.
        let tmp = safe_fs::random_name(".tmp-")?;
        let written = self.write_new(&tmp, name, &[MAGIC, &tag, &payload]);
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&*self.fd, &tmp, AtFlags::empty());
        }
        Ok(written?)
    }

    /// Writes `parts` to the new file `tmp` (`O_EXCL`, no link followed),
    /// syncs it and renames it to `name`.
    fn write_new(&self, tmp: &str, name: &str, parts: &[&[u8]]) -> std::io::Result<()> {
        let mut f = safe_fs::create_new_private(&self.fd, tmp)?;
        for p in parts {
            f.write_all(p)?;
        }
        f.sync_all()?;
        Ok(rustix::fs::renameat(&*self.fd, tmp, &*self.fd, name)?)
    }
}

/// The payload of a cache entry if its header is intact and its tag is the
/// one this user's key gives entry `id` of `kind` with this payload.
fn verified_payload<'a>(
    key: &Key,
    kind: ArtifactKind,
    id: &[u8; 32],
    bytes: &'a [u8],
) -> Option<&'a [u8]> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (tag, payload) = bytes[MAGIC.len()..].split_at(32);
    tags_equal(tag, &key.mac(&[DOMAIN, kind.tag(), id, payload])).then_some(payload)
}

/// (device, inode) of a folder and of each of its ancestors.
type Ancestry = Vec<(u64, u64)>;

/// Refuses a policy granting a directory that contains, or lies inside, the
/// cache `cache` uses or the default cache (even if not created yet): a guest
/// could read the key there and plant native code for later runs.
pub fn check_grants(policy: &Policy, cache: Option<&ModuleCache>) -> Result<()> {
    if policy.dirs.is_empty() {
        return Ok(());
    }
    // Each protected folder: its path, whether it exists, and the ancestry
    // of it (or of its nearest existing ancestor).
    let mut protected: Vec<(PathBuf, bool, Ancestry)> = Vec::new();
    if let Some(c) = cache {
        protected.push((c.dir.clone(), true, c.ancestry.to_vec()));
    }
    if let Some(d) = ModuleCache::default_dir() {
        if cache.is_none_or(|c| c.dir != d) {
            if let Some((exists, chain)) = nearest_ancestry(&d) {
                protected.push((d, exists, chain));
            }
        }
    }
    for grant in &policy.dirs {
        // A grant that does not open fails later, when it is preopened.
        let Ok(fd) = safe_fs::open_dir_following(&grant.host) else {
            continue;
        };
        let shown = grant.host.display();
        let chain = safe_fs::ancestry(&fd).map_err(|e| {
            Error::PolicyDenied(format!(
                "cannot check the grant {shown} against the module cache: {e}"
            ))
        })?;
        for (dir, exists, cache_chain) in &protected {
            let how = if cache_chain.contains(&chain[0]) {
                "contains"
            } else if *exists && chain.contains(&cache_chain[0]) {
                "lies inside"
            } else {
                continue;
            };
            return Err(Error::PolicyDenied(format!(
                "the policy grants {shown}, which {how} the compiled-module cache {}: a \
                 module there could read its key and plant native code",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The ancestry of `path`, or of its nearest existing ancestor (`false`).
fn nearest_ancestry(path: &Path) -> Option<(bool, Ancestry)> {
    let mut p = Some(path);
    let mut exists = true;
    while let Some(dir) = p {
        if let Ok(fd) = safe_fs::open_dir_following(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            return safe_fs::ancestry(&fd).ok().map(|c| (exists, c));
        }
        exists = false;
        p = dir.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: ArtifactKind = ArtifactKind::Module;

    fn entry(key: &Key, id: &[u8; 32], payload: &[u8]) -> Vec<u8> {
        let mut e = MAGIC.to_vec();
        e.extend_from_slice(&key.mac(&[DOMAIN, CORE.tag(), id, payload]));
        e.extend_from_slice(payload);
        e
    }

    #[test]
    fn corrupt_forged_and_moved_entries_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ModuleCache::new(dir.path()).expect("cache");
        let (id, other_id) = ([1u8; 32], [2u8; 32]);
        let good = entry(&cache.key, &id, b"payload");
        assert_eq!(
            verified_payload(&cache.key, CORE, &id, &good),
            Some(&b"payload"[..])
        );
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(verified_payload(&cache.key, CORE, &id, &flipped), None);
        assert_eq!(verified_payload(&cache.key, CORE, &id, &good[..20]), None);
        assert_eq!(verified_payload(&cache.key, CORE, &id, b""), None);
        // Tagged for a core module: never a component, even under its name.
        assert_eq!(
            verified_payload(&cache.key, ArtifactKind::Component, &id, &good),
            None
        );
        // Tagged for another entry name: not this entry.
        assert_eq!(verified_payload(&cache.key, CORE, &other_id, &good), None);
        // The old format's plain SHA-256 is no tag.
        let mut sha_only = MAGIC.to_vec();
        sha_only.extend_from_slice(&Sha256::digest(b"payload"));
        sha_only.extend_from_slice(b"payload");
        assert_eq!(verified_payload(&cache.key, CORE, &id, &sha_only), None);
        // Another user's (another directory's) key: not ours.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let other = ModuleCache::new(dir2.path()).expect("cache");
        let forged = entry(&other.key, &id, b"payload");
        assert_eq!(verified_payload(&cache.key, CORE, &id, &forged), None);
        // The same directory opened again reads back the same key.
        let again = ModuleCache::new(dir.path()).expect("cache");
        assert_eq!(
            verified_payload(&again.key, CORE, &id, &good),
            Some(&b"payload"[..])
        );
    }
}
