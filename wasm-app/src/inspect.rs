//! Static facts about a module: what it imports and exports, which ABI it
//! implements, and which WASI capabilities it asks for. Nothing is run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use wasmtime::{ExternType, FuncType, Module, ValType};

/// The result of inspecting a module.
#[derive(Debug, Clone)]
pub struct Report {
    pub size: usize,
    pub sha256: String,
    /// `module::name: type`
    pub imports: Vec<String>,
    /// `name: type`
    pub exports: Vec<String>,
    pub greeter_c: bool,
    pub greeter_rust: bool,
    pub arrow: bool,
    pub answer: bool,
    pub reactor: bool,
    /// WASI capability groups the imports need (filesystem, env, clocks, ...).
    pub wasi_capabilities: BTreeSet<&'static str>,
    /// Imports the host does not provide (instantiation would fail).
    pub unknown_imports: Vec<String>,
}

fn is_i32_func(ty: &FuncType, params: usize) -> bool {
    ty.params().len() == params
        && ty.params().all(|p| matches!(p, ValType::I32))
        && ty.results().len() == 1
        && ty.results().all(|r| matches!(r, ValType::I32))
}

fn capability(name: &str) -> &'static str {
    match name {
        n if n.starts_with("fd_") || n.starts_with("path_") => "filesystem/stdio",
        n if n.starts_with("environ_") => "environment",
        n if n.starts_with("args_") => "arguments",
        n if n.starts_with("clock_") || n == "poll_oneoff" => "clocks",
        "random_get" => "random",
        "proc_exit" | "proc_raise" => "exit",
        n if n.starts_with("sock_") => "sockets",
        "sched_yield" => "scheduling",
        _ => "other",
    }
}

/// Inspects a compiled module.
pub fn inspect(module: &Module, size: usize, sha256: &str) -> Report {
    let mut imports = Vec::new();
    let mut caps = BTreeSet::new();
    let mut unknown = Vec::new();
    for i in module.imports() {
        imports.push(format!(
            "{}::{}: {}",
            i.module(),
            i.name(),
            describe(&i.ty())
        ));
        if i.module() == "wasi_snapshot_preview1" {
            caps.insert(capability(i.name()));
        } else {
            unknown.push(format!("{}::{}", i.module(), i.name()));
        }
    }
    let mut exports = Vec::new();
    let mut funcs = std::collections::HashMap::new();
    let mut has_memory = false;
    for e in module.exports() {
        exports.push(format!("{}: {}", e.name(), describe(&e.ty())));
        match e.ty() {
            ExternType::Func(f) => {
                funcs.insert(e.name().to_string(), f);
            }
            ExternType::Memory(_) if e.name() == wasm_abi::MEMORY => has_memory = true,
            _ => {}
        }
    }
    let f = |name: &str, params: usize| funcs.get(name).is_some_and(|t| is_i32_func(t, params));
    let alloc = has_memory && f(wasm_abi::ALLOCATE, 1) && f(wasm_abi::DEALLOCATE, 1);
    Report {
        size,
        sha256: sha256.to_string(),
        imports,
        exports,
        answer: f(wasm_abi::ANSWER_FN, 0),
        greeter_c: alloc && f(wasm_abi::GREET_C, 1),
        greeter_rust: alloc && f(wasm_abi::GREET_RUST, 2),
        arrow: alloc && f(wasm_abi::PROCESS_ARROW, 4),
        reactor: funcs.contains_key(wasm_abi::INITIALIZE),
        wasi_capabilities: caps,
        unknown_imports: unknown,
    }
}

fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => {
            let p: Vec<_> = f.params().map(|v| v.to_string()).collect();
            let r: Vec<_> = f.results().map(|v| v.to_string()).collect();
            format!("func({}) -> ({})", p.join(", "), r.join(", "))
        }
        ExternType::Memory(m) => format!(
            "memory(min {} pages{})",
            m.minimum(),
            m.maximum()
                .map(|x| format!(", max {x}"))
                .unwrap_or_default()
        ),
        ExternType::Table(t) => format!("table(min {})", t.minimum()),
        ExternType::Global(g) => format!("global({})", g.content()),
        ExternType::Tag(_) => "tag".into(),
    }
}

impl Report {
    /// Human-readable text.
    pub fn render(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let mut s = String::new();
        let _ = writeln!(s, "size:    {} bytes", self.size);
        let _ = writeln!(s, "sha256:  {}", self.sha256);
        let _ = writeln!(s, "ABI:");
        let _ = writeln!(s, "  answer:           {}", yes(self.answer));
        let _ = writeln!(s, "  greeter (C):      {}", yes(self.greeter_c));
        let _ = writeln!(s, "  greeter (Rust):   {}", yes(self.greeter_rust));
        let _ = writeln!(s, "  Arrow processor:  {}", yes(self.arrow));
        let _ = writeln!(s, "  WASI reactor:     {}", yes(self.reactor));
        let caps: Vec<_> = self.wasi_capabilities.iter().copied().collect();
        let _ = writeln!(
            s,
            "WASI capabilities: {}",
            if caps.is_empty() {
                "none".to_string()
            } else {
                caps.join(", ")
            }
        );
        if !self.unknown_imports.is_empty() {
            let _ = writeln!(
                s,
                "imports the host does not provide: {}",
                self.unknown_imports.join(", ")
            );
        }
        let _ = writeln!(s, "imports ({}):", self.imports.len());
        for i in &self.imports {
            let _ = writeln!(s, "  {i}");
        }
        let _ = writeln!(s, "exports ({}):", self.exports.len());
        for e in &self.exports {
            let _ = writeln!(s, "  {e}");
        }
        s
    }
}
