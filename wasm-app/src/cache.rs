//! On-disk cache of compiled modules.
//!
//! Deserializing a compiled module is hundreds of times cheaper than
//! compiling it, but `Module::deserialize` trusts its input completely. So a
//! cache entry is never handed to it blindly:
//!
//! - the file name is the SHA-256 of the module bytes *and* of the engine's
//!   compatibility hash (wasmtime version, compiler settings, target), so a
//!   changed module or engine configuration never finds a stale entry;
//! - the entry starts with a magic, then the SHA-256 of the payload, which is
//!   checked before deserializing; a truncated or corrupt file is ignored,
//!   deleted and rebuilt.
//!
//! Not protected against: someone who can write to the cache directory can
//! write a well-formed entry. The directory must be as trusted as the host
//! binary itself (the same holds for wasmtime's own cache).

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 8] = b"WAPPCM01";
const HEADER: usize = MAGIC.len() + 32;

/// A directory of compiled modules for one engine configuration.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: PathBuf,
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
    /// A cache in `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create module cache {}", dir.display()))?;
        Ok(ModuleCache { dir })
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

    /// The folder holding the entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry path for `module_sha256` compiled by `engine`.
    pub fn entry_path(&self, engine: &Engine, module_sha256: &[u8; 32]) -> PathBuf {
        let mut h = ShaHasher(Sha256::new());
        h.write(module_sha256);
        engine.precompile_compatibility_hash().hash(&mut h);
        let key = hex::encode(h.0.finalize());
        self.dir.join(format!("{key}.cwasm"))
    }

    /// Loads the module from the cache, or compiles it and stores it.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        module_sha256: &[u8; 32],
        compile: impl FnOnce() -> anyhow::Result<Module>,
    ) -> anyhow::Result<(Module, CacheOutcome)> {
        let path = self.entry_path(engine, module_sha256);
        let mut outcome = CacheOutcome::Compiled;
        match std::fs::read(&path) {
            Ok(bytes) => match verified_payload(&bytes) {
                Some(payload) => {
                    // SAFETY: the payload is byte-for-byte what this cache
                    // wrote from `Module::serialize` (its SHA-256 matches), for
                    // this module and this engine configuration (the file name).
                    if let Ok(m) = unsafe { Module::deserialize(engine, payload) } {
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
        let _ = self.store(&path, &module);
        Ok((module, outcome))
    }

    fn store(&self, path: &Path, module: &Module) -> anyhow::Result<()> {
        let payload = module.serialize().map_err(anyhow::Error::from)?;
        let digest = Sha256::digest(&payload);
        // Write to a temporary name and rename, so readers never see half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(MAGIC)?;
        f.write_all(&digest)?;
        f.write_all(&payload)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// The payload of a cache entry if its header and checksum are intact.
fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (digest, payload) = bytes[MAGIC.len()..].split_at(32);
    (Sha256::digest(payload).as_slice() == digest).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_entries_are_rejected() {
        let mut good = MAGIC.to_vec();
        good.extend_from_slice(&Sha256::digest(b"payload"));
        good.extend_from_slice(b"payload");
        assert_eq!(verified_payload(&good), Some(&b"payload"[..]));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(verified_payload(&flipped), None);
        assert_eq!(verified_payload(&good[..20]), None);
        assert_eq!(verified_payload(b""), None);
    }
}
