//! The Arrow ABI against the real `wasm_module2` guest and the Apache Arrow
//! integration files; the main cases also against `wasm_component_arrow`
//! (the same processor as a component).

mod common;

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use wasm_app::transport::{self, Table};
use wasm_app::{Error, Plugin};

/// Golden files arrow-rs itself cannot read, with the reason. Each is still
/// checked: reading it must fail, so the list cannot go stale silently.
const UNREADABLE: &[(&str, &str)] = &[];

fn echo(p: &mut Plugin, t: &Table) -> Table {
    p.process_table("echo", &[], t)
        .expect("echo")
        .expect("echo returns a stream")
}

#[test]
fn every_golden_stream_and_file_survives_echo() {
    let dir = common::arrow_testing().join("integration-1.0.0-littleendian");
    // The core module and the component must give the same results.
    for (module, loaded) in common::arrow_modules() {
        let mut p = Plugin::new(loaded);
        let mut checked = 0;
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("read golden dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                let s = p.to_string_lossy();
                s.ends_with(".stream") || s.ends_with(".arrow_file")
            })
            .collect();
        names.sort();
        assert!(
            names.len() >= 40,
            "expected the golden files, found {}",
            names.len()
        );
        for path in names {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let known = UNREADABLE.iter().find(|(n, _)| *n == stem);
            let input = match (transport::read_ipc(&path), known) {
                (Ok(t), None) => t,
                (Err(_), Some(_)) => continue,
                (Ok(_), Some((_, why))) => {
                    panic!("{stem} is listed as unreadable ({why}) but arrow-rs reads it now")
                }
                (Err(e), None) => panic!("{}: {e:#}", path.display()),
            };
            let out = echo(&mut p, &input);
            assert_eq!(
                out.schema,
                input.schema,
                "{module}: {}: schema",
                path.display()
            );
            assert_eq!(
                out.batches.len(),
                input.batches.len(),
                "{module}: {}: batch count",
                path.display()
            );
            for (i, (a, b)) in out.batches.iter().zip(&input.batches).enumerate() {
                assert_eq!(a, b, "{module}: {}: batch {i}", path.display());
            }
            checked += 1;
        }
        assert!(
            checked >= 40,
            "{module}: only {checked} golden files checked"
        );
    }
}

#[test]
fn test_command_gives_the_studys_result() {
    // The core module and the component must give the same results.
    for (module, loaded) in common::arrow_modules() {
        let mut p = Plugin::new(loaded);
        let input = transport::study_example().expect("example");
        let cfg = vec![("filename".to_string(), "test.txt".to_string())];
        let out = p
            .process_table("test", &cfg, &input)
            .expect("test")
            .expect("stream");
        let expected_schema = Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("content", DataType::Utf8, false),
        ]);
        assert_eq!(out.schema.fields(), expected_schema.fields());
        assert_eq!(out.num_rows(), 1);
        let b = &out.batches[0];
        let ids = b
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64");
        let content = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        assert_eq!(ids.value(0), 1);
        assert_eq!(content.value(0), "this is a test2", "{module}");
    }
}

fn text_table(values: &[Option<&str>], split_at: usize) -> Table {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("text", DataType::Utf8, true),
    ]));
    let make = |range: std::ops::Range<usize>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from_iter_values(
                    range.clone().map(|i| i as u64),
                )),
                Arc::new(StringArray::from(values[range].to_vec())),
            ],
        )
        .expect("batch")
    };
    Table {
        schema: schema.clone(),
        batches: vec![make(0..split_at), make(split_at..values.len())],
    }
}

#[test]
fn replace_returns_only_changed_rows_as_a_delta() {
    let values = [
        Some("the cat sat"),
        None,
        Some("no match here"),
        Some("cat and cat"),
        Some(""),
        Some("concatenate"),
    ];
    let input = text_table(&values, 2);
    let cfg: Vec<(String, String)> = [("column", "text"), ("from", "cat"), ("to", "dog")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // The core module and the component must give the same results.
    for (module, loaded) in common::arrow_modules() {
        let mut p = Plugin::new(loaded);
        let out = p
            .process_table("replace", &cfg, &input)
            .expect("replace")
            .expect("stream");
        // Reference: plain Rust over the same values.
        let want: Vec<(u64, String)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = (*v)?;
                let r = v.replace("cat", "dog");
                (r != v).then_some((i as u64, r))
            })
            .collect();
        let mut got = Vec::new();
        for b in &out.batches {
            let rows = b
                .column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .expect("row u64");
            let vals = b
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("value utf8");
            for i in 0..b.num_rows() {
                got.push((rows.value(i), vals.value(i).to_string()));
            }
        }
        assert_eq!(got, want, "{module}");
        // Patching our copy with the delta gives the full replace.
        let mut patched: Vec<Option<String>> =
            values.iter().map(|v| v.map(str::to_string)).collect();
        for (row, v) in got {
            patched[row as usize] = Some(v);
        }
        let full: Vec<Option<String>> = values
            .iter()
            .map(|v| v.map(|s| s.replace("cat", "dog")))
            .collect();
        assert_eq!(patched, full);
    }
}

#[test]
fn unknown_command_is_a_reported_error_and_the_host_goes_on() {
    // The core module and the component must give the same results.
    for (module, loaded) in common::arrow_modules() {
        let mut p = Plugin::new(loaded);
        let input = transport::study_example().expect("example");
        match p.process_table("frobnicate", &[], &input) {
            Err(Error::GuestReported { message: Some(m) }) => {
                assert!(m.contains("frobnicate"), "message names the command: {m}")
            }
            other => panic!("{module}: expected a reported error, got {other:?}"),
        }
        // Reported errors keep the instance; it still works.
        assert!(p.has_instance());
        let out = echo(&mut p, &input);
        assert_eq!(out.batches, input.batches);
    }
}

#[test]
fn missing_config_is_a_reported_error() {
    for (module, loaded) in common::arrow_modules() {
        let mut p = Plugin::new(loaded);
        let input = transport::study_example().expect("example");
        match p.process_table("replace", &[], &input) {
            Err(Error::GuestReported { message: Some(m) }) => {
                assert!(m.contains("column"), "{module}: {m}")
            }
            other => panic!("{module}: expected a reported error, got {other:?}"),
        }
    }
}

#[test]
fn fuzzed_streams_give_errors_and_the_host_keeps_serving() {
    let dir = common::arrow_testing().join("fuzz-ipc-stream");
    let meta = transport::encode_meta("echo", &[]).expect("meta");
    let good = transport::study_example().expect("example");
    let mut p = Plugin::new(common::arrow_module());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() > 20,
        "expected the fuzz corpus in {}",
        dir.display()
    );
    let mut errors = 0;
    for f in &files {
        let data = std::fs::read(f).expect("read fuzz file");
        match p.process_ipc(&meta, &data) {
            // arrow-rs accepted it; then what came back must decode.
            Ok(bytes) => {
                transport::decode_stream(bytes, u64::MAX)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
            }
            Err(Error::GuestReported { message: Some(m) }) => {
                assert!(!m.is_empty());
                errors += 1;
            }
            // A guest that panics in arrow-rs traps; the plugin replaces it.
            Err(Error::Trap { .. }) => errors += 1,
            Err(e) => panic!("{}: unexpected error kind {e:?}", f.display()),
        }
        // The same plugin serves a good request right after.
        let out = echo(&mut p, &good);
        assert_eq!(out.batches, good.batches, "after {}", f.display());
    }
    assert!(
        errors * 2 > files.len(),
        "only {errors} of {} fuzz files were rejected",
        files.len()
    );
}

#[test]
fn empty_stream_round_trips_its_schema() {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
    let t = Table {
        schema: schema.clone(),
        batches: vec![],
    };
    let mut p = Plugin::new(common::arrow_module());
    let out = echo(&mut p, &t);
    assert_eq!(out.schema, schema);
    assert!(out.batches.is_empty());
}
