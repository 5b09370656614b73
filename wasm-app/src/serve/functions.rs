//! The functions a server offers, as declared in `functions.toml`:
//!
//! ```toml
//! [[function]]
//! name = "tokenize"
//! module = "target/wasm-modules/wasm_module2.wasm"   # from the file's folder
//! command = "tokenize"
//! config = { column = "text", id = "id" }
//! args = [{ name = "id", type = "uint64" }, { name = "text", type = "utf8" }]
//! returns = [{ name = "doc_id", type = "uint64" }, { name = "position", type = "uint32" },
//!            { name = "token", type = "utf8" }]
//! max-memory = "64MiB"                               # any policy key
//! timeout = "5s"
//! ```
//!
//! Every key besides the function's own is a policy key (as in a policy
//! file), over the server's policy flags. Types are arrow's names in lower
//! case ([`parse_type`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::policy::manifest::parse_table_over;
use crate::pool::Pool;
use crate::runtime::{EngineOptions, Runtime};

/// Functions one server may offer: names are short and few.
const MAX_FUNCTIONS: usize = 1000;
const MAX_NAME: usize = 128;
/// A functions file is a page or two of TOML.
const MAX_FILE: u64 = 1 << 20;

/// One function: a module's Arrow command with its configuration, its
/// declared columns, and instances to run it on.
pub(crate) struct Function {
    pub name: String,
    pub command: String,
    pub config: Vec<(String, String)>,
    /// The argument columns, in order (all nullable).
    pub args: SchemaRef,
    /// The result columns, in order (all nullable): every batch a client
    /// receives has exactly this schema.
    pub returns: SchemaRef,
    pub pool: Arc<Pool>,
}

impl Function {
    /// The bound on what one call may return, and on one input batch.
    pub fn output_limit(&self) -> u64 {
        self.pool.module().policy().limits.output_limit()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    function: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
}

/// The keys of a `[[function]]` that are not policy keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    name: String,
    module: String,
    command: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
    args: Vec<Column>,
    returns: Vec<Column>,
}

const OWN_KEYS: [&str; 6] = ["name", "module", "command", "config", "args", "returns"];

/// Reads the functions file and loads every function's module under its
/// policy: the server's `defaults` with the function's policy keys over
/// them. `max_concurrent` sizes each module's instance pool when its policy
/// sets no `max-instances`.
pub(crate) fn load(options: &super::Options, max_concurrent: u32) -> Result<Vec<Function>> {
    let path = options.functions.as_path();
    let invalid = |e: anyhow::Error| Error::InvalidArgument(format!("{}: {e:#}", path.display()));
    let text = read_text(path).map_err(invalid)?;
    let file: File = toml::from_str(&text).map_err(|e| invalid(e.into()))?;
    if file.function.is_empty() {
        return Err(invalid(anyhow::anyhow!("no [[function]] in it")));
    }
    if file.function.len() > MAX_FUNCTIONS {
        return Err(invalid(anyhow::anyhow!(
            "more than {MAX_FUNCTIONS} functions"
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut functions: Vec<Function> = Vec::new();
    for (i, table) in file.function.into_iter().enumerate() {
        let f = load_one(table, base, options, max_concurrent).map_err(|e| match e {
            // A module's own load error (its size, its hash) says it all.
            Error::Other(e) => invalid(e.context(format!("function #{}", i + 1))),
            e => e,
        })?;
        if functions.iter().any(|g| g.name == f.name) {
            return Err(invalid(anyhow::anyhow!(
                "function '{}' is declared twice",
                f.name
            )));
        }
        functions.push(f);
    }
    Ok(functions)
}

/// The file's text: a regular file (a FIFO is refused, not waited on) of
/// at most [`MAX_FILE`] bytes.
fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = crate::safe_fs::read_regular(path, MAX_FILE).context("cannot read it")?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_FILE,
        "larger than {MAX_FILE} bytes"
    );
    String::from_utf8(bytes).context("not UTF-8 text")
}

fn load_one(
    mut table: toml::Table,
    base: &Path,
    options: &super::Options,
    max_concurrent: u32,
) -> Result<Function> {
    let own: toml::Table = OWN_KEYS
        .iter()
        .filter_map(|k| table.remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    let declared: Declared = toml::Value::Table(own)
        .try_into()
        .map_err(|e| Error::Other(anyhow::Error::from(e)))?;
    let name = declared.name;
    let context = |e: anyhow::Error| Error::Other(e.context(format!("function '{name}'")));
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(context(anyhow::anyhow!(
            "a name is 1 to {MAX_NAME} characters without control characters"
        )));
    }
    let mut policy = parse_table_over(table, base, &options.defaults).map_err(context)?;
    policy.limits.max_instances.get_or_insert(max_concurrent);
    let args = schema(&declared.args).map_err(context)?;
    let returns = schema(&declared.returns).map_err(context)?;
    // Columnless batches have no buffers: their row count would be bounded
    // by nothing.
    if args.fields().is_empty() || returns.fields().is_empty() {
        return Err(context(anyhow::anyhow!(
            "it takes and returns at least one column each"
        )));
    }
    let mut engine = EngineOptions::for_policy(&policy);
    if !options.cache {
        engine.cache_dir = None;
    }
    let runtime = Runtime::new(engine)?;
    let module = runtime.load(base.join(&declared.module), policy)?;
    Ok(Function {
        command: declared.command,
        config: declared.config.into_iter().collect(),
        args,
        returns,
        pool: Arc::new(Pool::new(module)),
        name,
    })
}

fn schema(columns: &[Column]) -> anyhow::Result<SchemaRef> {
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        if fields.iter().any(|f: &Field| f.name() == &c.name) {
            bail!("column '{}' is declared twice", c.name);
        }
        let t = parse_type(&c.data_type).with_context(|| format!("column '{}'", c.name))?;
        fields.push(Field::new(&c.name, t, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// A column type by arrow-rs's `DataType` name in lower case: `boolean`,
/// `int8`..`int64`, `uint8`..`uint64`, `float16`/`32`/`64`, `utf8`,
/// `large_utf8`, `binary`, `large_binary`, `date32`, `date64`, and
/// `timestamp_s`/`_ms`/`_us`/`_ns` (no time zone).
fn parse_type(name: &str) -> anyhow::Result<DataType> {
    Ok(match name {
        "boolean" | "bool" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float16" => DataType::Float16,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        "utf8" | "string" => DataType::Utf8,
        "large_utf8" | "large_string" => DataType::LargeUtf8,
        "binary" => DataType::Binary,
        "large_binary" => DataType::LargeBinary,
        "date32" => DataType::Date32,
        "date64" => DataType::Date64,
        "timestamp_s" => DataType::Timestamp(TimeUnit::Second, None),
        "timestamp_ms" => DataType::Timestamp(TimeUnit::Millisecond, None),
        "timestamp_us" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamp_ns" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        other => bail!(
            "unknown type '{}' (boolean, int8..int64, uint8..uint64, float16/32/64, utf8, \
             large_utf8, binary, large_binary, date32, date64, timestamp_s/ms/us/ns)",
            crate::text::escape_controls(other)
        ),
    })
}
