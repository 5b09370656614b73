//! The metadata stream: which command to run and its configuration.
//!
//! The stream holds exactly one row (over any number of batches, empty
//! batches ignored) with a utf8 field `command` and an optional struct field
//! `config` whose utf8 fields are the configuration keys. A null `config`
//! row, or a null value for a key, reads as "not set".

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray};
use arrow::buffer::Buffer;
use arrow::record_batch::RecordBatch;
use wasm_abi::meta::{COMMAND, CONFIG, FLUSH, MERGE};

use crate::columns::Strings;
use crate::ipc::Input;

/// The commands this guest knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Test,
    Echo,
    Replace,
    Filter,
    Tokenize,
    Count,
}

impl Command {
    /// Every command with its name, in the order error messages list them.
    const ALL: [(&'static str, Command); 6] = [
        ("test", Command::Test),
        ("echo", Command::Echo),
        ("replace", Command::Replace),
        ("filter", Command::Filter),
        ("tokenize", Command::Tokenize),
        ("count", Command::Count),
    ];

    /// The command's name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(n, _)| *n)
    }

    /// Parses a command name (exact, case-sensitive).
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown command '{name}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// A command's configuration: key → value, only keys with a non-null value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Config(BTreeMap<String, String>);

impl Config {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The value of `key`, or an error naming the missing key.
    pub fn require(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .ok_or_else(|| format!("config key '{key}' is missing"))
    }
}

/// One parsed metadata stream.
#[derive(Debug)]
pub struct Request {
    pub command: Command,
    pub config: Config,
    /// `flush` = `"true"`: the call after the last batch.
    pub flush: bool,
    /// `merge` = `"true"`: the call combining several instances' flush
    /// results (the data); never together with `flush`.
    pub merge: bool,
}

/// Parses the metadata stream.
pub fn parse(bytes: &[u8]) -> Result<Request, String> {
    let (batch, row) = single_row(bytes)?;
    let command = batch
        .column_by_name(COMMAND)
        .ok_or_else(|| format!("metadata: field '{COMMAND}' is missing"))?;
    let command = Strings::new(command.as_ref())
        .ok_or_else(|| {
            format!(
                "metadata: field '{COMMAND}' must be utf8, got {}",
                command.data_type()
            )
        })?
        .get(row)
        .ok_or_else(|| format!("metadata: field '{COMMAND}' is null"))?;
    let command = Command::parse(command)?;
    let config = match batch.column_by_name(CONFIG) {
        Some(config) => parse_config(config.as_ref(), row)?,
        None => Config::default(),
    };
    let flush = flag(&config, FLUSH)?;
    let merge = flag(&config, MERGE)?;
    if flush && merge {
        return Err(format!(
            "config keys '{FLUSH}' and '{MERGE}' cannot both be 'true'"
        ));
    }
    Ok(Request {
        command,
        config,
        flush,
        merge,
    })
}

/// A boolean config key: unset or `"false"` is false, `"true"` true.
fn flag(config: &Config, key: &str) -> Result<bool, String> {
    match config.get(key) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "config key '{key}' must be 'true' or 'false', got '{other}'"
        )),
    }
}

/// Reads the whole stream and returns the batch holding its only row.
fn single_row(bytes: &[u8]) -> Result<(RecordBatch, usize), String> {
    // A few hundred bytes: copied, so that the host's area is not borrowed.
    let stream = Buffer::from(bytes);
    let mut input = Input::open(&stream, "metadata stream")?;
    let mut found = None;
    let mut rows = 0usize;
    while let Some(batch) = input.next_batch()? {
        if batch.num_rows() > 0 && found.is_none() {
            found = Some(batch.clone());
        }
        rows = rows.saturating_add(batch.num_rows());
    }
    match found {
        Some(batch) if rows == 1 => Ok((batch, 0)),
        _ => Err(format!("metadata: expected exactly one row, got {rows}")),
    }
}

/// Reads row `row` of the `config` struct column.
fn parse_config(column: &dyn Array, row: usize) -> Result<Config, String> {
    let config = column.as_struct_opt().ok_or_else(|| {
        format!(
            "metadata: field '{CONFIG}' must be a struct, got {}",
            column.data_type()
        )
    })?;
    let mut map = BTreeMap::new();
    if config.is_null(row) {
        return Ok(Config(map));
    }
    // Keys with a null value are not in `map` but still count as duplicates.
    let mut seen = BTreeSet::new();
    for (field, values) in config.fields().iter().zip(config.columns()) {
        let key = field.name();
        let values = Strings::new(values.as_ref()).ok_or_else(|| {
            format!(
                "metadata: config key '{key}' must be utf8, got {}",
                field.data_type()
            )
        })?;
        if !seen.insert(key.as_str()) {
            return Err(format!("metadata: config key '{key}' appears twice"));
        }
        if let Some(value) = values.get(row) {
            map.insert(key.clone(), value.to_string());
        }
    }
    Ok(Config(map))
}
