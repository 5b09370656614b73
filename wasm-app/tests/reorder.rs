//! The reorder buffer is bounded: when one batch is slow, the results of the
//! batches after it do not pile up on the host (`Stats::max_reorder_depth`).

mod common;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use wasm_app::pipeline::{self, Options, Step, WINDOW_PER_THREAD};
use wasm_app::Policy;

/// Echoes its data stream (copied to a fresh area); a call with more than
/// 2048 bytes of data first spins for a while (about a second), so only the
/// batch holding the long first row is slow.
fn slow_first() -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
{alloc}
  (func (export "wasm_memory_process_data_arrow")
        (param i32 i32) (param $data i32) (param $len i32) (result i32)
    (local $i i32)
    (local $out i32)
    (if (i32.gt_u (local.get $len) (i32.const 2048))
      (then
        (local.set $i (i32.const 1000000000))
        (loop $spin
          (local.set $i (i32.sub (local.get $i) (i32.const 1)))
          (br_if $spin (i32.ne (local.get $i) (i32.const 0))))))
    (local.set $out (call $alloc (local.get $len)))
    (if (i32.and (i32.eqz (local.get $out)) (i32.ne (local.get $len) (i32.const 0)))
      (then (unreachable)))
    (memory.copy (local.get $out) (local.get $data) (local.get $len))
    (i32.store (i32.const 16) (local.get $out))
    (i32.store (i32.const 20) (local.get $len))
    (i32.const 16)))
"#,
        alloc = common::wat::bump_allocator(1024)
    )
}

/// `n` one-column rows; row 0 is long (its batch alone exceeds 2048 bytes).
fn rows(n: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, false)]));
    let texts: StringArray = (0..n)
        .map(|i| {
            Some(if i == 0 {
                "x".repeat(4096)
            } else {
                format!("row {i}")
            })
        })
        .collect();
    RecordBatch::try_new(schema, vec![Arc::new(texts)]).expect("batch")
}

#[test]
fn a_slow_first_batch_does_not_pile_up_the_results_after_it() {
    let module = common::runtime()
        .load_bytes("slow_first.wat", slow_first().as_bytes(), Policy::default())
        .expect("load");
    let step = Step {
        module,
        command: "echo".into(),
        config: Vec::new(),
    };
    let threads = 4;
    let input = rows(1500);
    let mut out = Vec::new();
    let stats = pipeline::run(
        &[step],
        Options {
            threads,
            ordered: true,
        },
        1,
        std::iter::once(Ok(input.clone())),
        |_, b| {
            out.push(b.clone());
            Ok(())
        },
        |_| {},
    )
    .expect("run");
    // Everything, in order.
    let schema = input.schema();
    let out = arrow::compute::concat_batches(&schema, &out).expect("concat");
    assert_eq!(out, input);
    // Results waited behind batch 0 (the workers kept going while it spun)...
    assert!(stats.max_reorder_depth > 0, "{stats:?}");
    // ...but no more than the window: the reader stopped feeding.
    assert!(
        stats.max_reorder_depth < (WINDOW_PER_THREAD * threads) as u64,
        "{stats:?}"
    );
}
