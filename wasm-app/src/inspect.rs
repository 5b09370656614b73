//! Static facts about a module: what it imports and exports, which ABI it
//! implements, and which WASI capabilities it asks for. Nothing is run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Type};
use wasmtime::{Engine, ExternType, FuncType, Module, ValType};

use crate::error::{Error, Result};
use crate::module::Pre;
use crate::policy::Policy;
use crate::runtime::Runtime;
use crate::text::escape_controls;

/// Inspects the module file at `path` (a core module or a component)
/// without running it: compiled with `rt`'s engine under the default
/// policy's size and time bounds.
pub fn inspect_file(rt: &Runtime, path: impl AsRef<std::path::Path>) -> Result<Report> {
    let path = path.as_ref();
    let bytes = crate::compile::read_module(path, &Policy::default().limits)?;
    inspect_bytes(rt, &path.display().to_string(), &bytes)
}

/// As [`inspect_file`], from bytes; `name` is used in messages.
pub fn inspect_bytes(rt: &Runtime, name: &str, bytes: &[u8]) -> Result<Report> {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let engine = rt.engine();
    match rt.load_bytes(name, bytes, Policy::default()) {
        Ok(m) => Ok(match m.pre() {
            Pre::Core(pre) => inspect(pre.module(), bytes.len(), &sha),
            Pre::Component(pre) => inspect_component(pre.component(), engine, bytes.len(), &sha),
        }),
        // Imports the host lacks (or the default policy does not grant)
        // still leave something to describe; the load above already
        // compiled it within the compile timeout.
        Err(Error::Instantiate(_) | Error::PolicyDenied(_))
            if crate::instance::component::is_component(bytes) =>
        {
            let c = Component::new(engine, bytes).map_err(anyhow::Error::from)?;
            Ok(inspect_component(&c, engine, bytes.len(), &sha))
        }
        Err(Error::Instantiate(_) | Error::PolicyDenied(_)) => {
            let module = Module::new(engine, bytes).map_err(anyhow::Error::from)?;
            Ok(inspect(&module, bytes.len(), &sha))
        }
        Err(e) => Err(e),
    }
}

/// The result of inspecting a module.
#[derive(Debug, Clone)]
pub struct Report {
    /// A component (WIT worlds) rather than a core module.
    pub component: bool,
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
    /// Host functions (`wasm_host.*`) the module imports, each with the
    /// grant it needs.
    pub host_functions: Vec<String>,
}

/// What `wasm_host.<name>` needs granted.
fn host_function(name: &str) -> String {
    let name = crate::text::guest_text(name.as_bytes());
    match name.as_str() {
        wasm_abi::host::HTTP_REQUEST => format!("{name} (network: allowed-hosts / --allow-host)"),
        wasm_abi::host::TAKE => format!("{name} (always)"),
        wasm_abi::host::LOG => format!("{name} (host-functions / --allow-host-fn {name})"),
        _ => format!("{name} (an embedder's; host-functions / --allow-host-fn {name})"),
    }
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
pub(crate) fn inspect(module: &Module, size: usize, sha256: &str) -> Report {
    let mut imports = Vec::new();
    let mut caps = BTreeSet::new();
    let mut unknown = Vec::new();
    let mut host_functions = Vec::new();
    for i in module.imports() {
        imports.push(format!(
            "{}::{}: {}",
            i.module(),
            i.name(),
            describe(&i.ty())
        ));
        if i.module() == "wasi_snapshot_preview1" {
            caps.insert(capability(i.name()));
        } else if i.module() == wasm_abi::host::MODULE {
            host_functions.push(host_function(i.name()));
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
        component: false,
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
        host_functions,
    }
}

/// The WASI 0.2 capability group of an import such as
/// `wasi:filesystem/types@0.2.6`.
fn component_capability(name: &str) -> &'static str {
    let iface = name.split('@').next().unwrap_or(name);
    match iface {
        i if i.starts_with("wasi:filesystem/") => "filesystem",
        "wasi:cli/environment" => "environment",
        "wasi:cli/exit" => "exit",
        i if i.starts_with("wasi:cli/") => "stdio",
        i if i.starts_with("wasi:io/") => "streams",
        i if i.starts_with("wasi:clocks/") => "clocks",
        i if i.starts_with("wasi:random/") => "random",
        i if i.starts_with("wasi:sockets/") => "sockets",
        i if i.starts_with("wasi:http/") => "http",
        _ => "other",
    }
}

/// Inspects a compiled component: its imports and exports (WIT names), and
/// which of the worlds of `wit/` it implements.
pub(crate) fn inspect_component(
    component: &Component,
    engine: &Engine,
    size: usize,
    sha256: &str,
) -> Report {
    let ty = component.component_type();
    let mut imports = Vec::new();
    let mut caps = BTreeSet::new();
    let mut unknown = Vec::new();
    for (name, item) in ty.imports(engine) {
        imports.push(format!("{name}: {}", describe_item(&item.ty)));
        if name.starts_with("wasi:") {
            caps.insert(component_capability(name));
        } else {
            unknown.push(name.to_string());
        }
    }
    let mut exports = Vec::new();
    let mut funcs = std::collections::HashMap::new();
    for (name, item) in ty.exports(engine) {
        exports.push(format!("{name}: {}", describe_item(&item.ty)));
        if let ComponentItem::ComponentFunc(f) = item.ty {
            funcs.insert(name.to_string(), describe_func(&f));
        }
    }
    let has = |name: &str, sig: &str| funcs.get(name).is_some_and(|f| f == sig);
    let greet = has("greet", "func(name: string) -> string");
    Report {
        component: true,
        size,
        sha256: sha256.to_string(),
        imports,
        exports,
        answer: has("answer", "func() -> s32"),
        greeter_c: greet,
        greeter_rust: greet,
        arrow: has(
            "process",
            "func(meta: list<u8>, data: list<u8>) -> result<list<u8>, string>",
        ),
        reactor: false,
        wasi_capabilities: caps,
        unknown_imports: unknown,
        host_functions: Vec::new(),
    }
}

fn describe_item(item: &ComponentItem) -> String {
    match item {
        ComponentItem::ComponentFunc(f) => describe_func(f),
        ComponentItem::CoreFunc(_) => "core func".into(),
        ComponentItem::Module(_) => "core module".into(),
        ComponentItem::Component(_) => "component".into(),
        ComponentItem::ComponentInstance(_) => "instance".into(),
        ComponentItem::Type(t) => format!("type {}", type_name(t)),
        ComponentItem::Resource(_) => "resource".into(),
    }
}

fn describe_func(f: &ComponentFunc) -> String {
    let params: Vec<_> = f
        .params()
        .map(|(n, t)| format!("{n}: {}", type_name(&t)))
        .collect();
    let results: Vec<_> = f.results().map(|t| type_name(&t)).collect();
    match results.as_slice() {
        [] => format!("func({})", params.join(", ")),
        [one] => format!("func({}) -> {one}", params.join(", ")),
        many => format!("func({}) -> ({})", params.join(", "), many.join(", ")),
    }
}

/// WIT spelling of a type (compound types other than list, option and
/// result by kind only).
fn type_name(t: &Type) -> String {
    let opt = |t: Option<Type>| t.map(|t| type_name(&t)).unwrap_or_else(|| "_".into());
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => format!("result<{}, {}>", opt(r.ok()), opt(r.err())),
        Type::Record(_) => "record".into(),
        Type::Tuple(_) => "tuple".into(),
        Type::Variant(_) => "variant".into(),
        Type::Enum(_) => "enum".into(),
        Type::Flags(_) => "flags".into(),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        _ => "other".into(),
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
    /// Human-readable text. Names come from the module, so control
    /// characters in them are escaped: a module can't drive the terminal.
    pub fn render(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let mut s = String::new();
        let kind = if self.component {
            "component (WIT worlds of wit/: greeter, arrow-processor)"
        } else {
            "core module"
        };
        let _ = writeln!(s, "kind:    {kind}");
        let _ = writeln!(s, "size:    {} bytes", self.size);
        let _ = writeln!(s, "sha256:  {}", self.sha256);
        let _ = writeln!(s, "{}:", if self.component { "WIT" } else { "ABI" });
        let _ = writeln!(s, "  answer:           {}", yes(self.answer));
        let _ = writeln!(s, "  greeter (C):      {}", yes(self.greeter_c));
        let _ = writeln!(s, "  greeter (Rust):   {}", yes(self.greeter_rust));
        let _ = writeln!(s, "  Arrow processor:  {}", yes(self.arrow));
        if !self.component {
            let _ = writeln!(s, "  WASI reactor:     {}", yes(self.reactor));
        }
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
        if !self.host_functions.is_empty() {
            let _ = writeln!(s, "host functions: {}", self.host_functions.join(", "));
        }
        if !self.unknown_imports.is_empty() {
            let _ = writeln!(
                s,
                "imports the host does not provide: {}",
                escape_controls(&self.unknown_imports.join(", "))
            );
        }
        let _ = writeln!(s, "imports ({}):", self.imports.len());
        for i in &self.imports {
            let _ = writeln!(s, "  {}", escape_controls(i));
        }
        let _ = writeln!(s, "exports ({}):", self.exports.len());
        for e in &self.exports {
            let _ = writeln!(s, "  {}", escape_controls(e));
        }
        s
    }
}
