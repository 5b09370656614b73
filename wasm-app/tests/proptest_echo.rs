//! Property: any batch (nulls, empty batches, sliced arrays, dictionaries,
//! nested lists and structs) comes back equal through the guest's `echo`.

mod common;

use std::sync::Arc;

use arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Int16Type, Schema};
use proptest::prelude::*;
use wasm_app::pipeline::{self, Options, Step};

#[derive(Debug, Clone)]
struct Rows {
    ints: Vec<Option<i64>>,
    texts: Vec<Option<String>>,
    lists: Vec<Option<Vec<Option<i32>>>>,
    /// Slice taken of the full batch (offset, len), to exercise offsets.
    slice: (usize, usize),
    batch_size: usize,
    threads: usize,
}

fn rows() -> impl Strategy<Value = Rows> {
    (0usize..60).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::option::of(any::<i64>()), n),
            prop::collection::vec(prop::option::of("[a-zé世🦀 ]{0,12}"), n),
            prop::collection::vec(
                prop::option::of(prop::collection::vec(prop::option::of(any::<i32>()), 0..5)),
                n,
            ),
            (0..=n).prop_flat_map(move |o| (Just(o), 0..=(n - o))),
            1usize..20,
            1usize..4,
        )
            .prop_map(|(ints, texts, lists, slice, batch_size, threads)| Rows {
                ints,
                texts,
                lists,
                slice,
                batch_size,
                threads,
            })
    })
}

fn batch(r: &Rows) -> RecordBatch {
    let ints: ArrayRef = Arc::new(Int64Array::from(r.ints.clone()));
    let texts: ArrayRef = Arc::new(StringArray::from(r.texts.clone()));
    let dict: ArrayRef = Arc::new(
        r.texts
            .iter()
            .map(|t| t.as_deref())
            .collect::<DictionaryArray<Int16Type>>(),
    );
    let values: Vec<Option<i32>> = r.lists.iter().flatten().flatten().copied().collect();
    let lens = r.lists.iter().map(|l| l.as_ref().map_or(0, Vec::len));
    let item = Arc::new(Field::new("item", DataType::Int32, true));
    let list: ArrayRef = Arc::new(ListArray::new(
        item,
        OffsetBuffer::from_lengths(lens),
        Arc::new(Int32Array::from(values)),
        Some(r.lists.iter().map(Option::is_some).collect()),
    ));
    let strukt: ArrayRef = Arc::new(StructArray::new(
        Fields::from(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("t", DataType::Utf8, true),
        ]),
        vec![ints.clone(), texts.clone()],
        None,
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("t", DataType::Utf8, true),
        Field::new("d", dict.data_type().clone(), true),
        Field::new("l", list.data_type().clone(), true),
        Field::new("s", strukt.data_type().clone(), false),
    ]));
    let full = RecordBatch::try_new(schema, vec![ints, texts, dict, list, strukt]).expect("batch");
    full.slice(r.slice.0, r.slice.1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn echo_returns_every_batch_unchanged(r in rows()) {
        let input = batch(&r);
        let step = Step { module: common::arrow_module(), command: "echo".into(), config: vec![] };
        let mut out = Vec::new();
        pipeline::run(
            &[step],
            Options { threads: r.threads, ordered: true },
            r.batch_size,
            // An empty batch in front: empty batches must survive too.
            [Ok(input.slice(0, 0)), Ok(input.clone())].into_iter(),
            |_, b| { out.push(b.clone()); Ok(()) },
            |_| {},
        ).expect("echo");
        prop_assert_eq!(out[0].num_rows(), 0);
        let got = arrow::compute::concat_batches(&input.schema(), &out[1..]).expect("concat");
        prop_assert_eq!(got, input);
    }
}
