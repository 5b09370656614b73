//! What the cache stores: compiled core modules and compiled components,
//! each tagged with its kind.
//!
//! Invariant: the kind is part of an entry's identity (its name) and of
//! what its HMAC covers, so an entry written for one kind is never handed
//! to the other kind's `deserialize`, even for the same bytes.

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The kind of compiled code in a cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A core module (`Module::serialize`).
    Module,
    /// A component (`Component::serialize`).
    Component,
}

impl ArtifactKind {
    /// The bytes that bind an entry to its kind (name and tag).
    pub(crate) fn tag(self) -> &'static [u8] {
        match self {
            ArtifactKind::Module => b"core-module\0",
            ArtifactKind::Component => b"component\0",
        }
    }
}

/// Compiled code the cache can store and load back: wasmtime's `Module`
/// and `Component`, and nothing else (sealed: an outside implementation
/// could have arbitrary bytes signed as native code).
pub trait Artifact: Sized + sealed::Sealed {
    /// Which kind this is, for the entry's name and tag.
    const KIND: ArtifactKind;

    /// The native code, as wasmtime serializes it.
    fn serialize(&self) -> anyhow::Result<Vec<u8>>;

    /// Loads code written by [`Artifact::serialize`].
    ///
    /// # Safety
    /// `bytes` must come from [`Artifact::serialize`] of the same kind, by
    /// an engine with the same configuration: wasmtime runs it as native
    /// code without checking it.
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for wasmtime::Module {}
    impl Sealed for wasmtime::component::Component {}
}

impl Artifact for Module {
    const KIND: ArtifactKind = ArtifactKind::Module;

    fn serialize(&self) -> anyhow::Result<Vec<u8>> {
        Module::serialize(self).map_err(anyhow::Error::from)
    }

    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Self> {
        // SAFETY: the caller's contract.
        unsafe { Module::deserialize(engine, bytes) }.map_err(anyhow::Error::from)
    }
}

impl Artifact for Component {
    const KIND: ArtifactKind = ArtifactKind::Component;

    fn serialize(&self) -> anyhow::Result<Vec<u8>> {
        Component::serialize(self).map_err(anyhow::Error::from)
    }

    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Self> {
        // SAFETY: the caller's contract.
        unsafe { Component::deserialize(engine, bytes) }.map_err(anyhow::Error::from)
    }
}
