//! The merge call (`merge` = `"true"`): `count` sums flush results.

use super::*;

/// `(rows, batches, bytes)` of a one-row `count` result.
fn totals(bytes: &[u8]) -> (u64, u64, u64) {
    let (_, batches) = read(bytes);
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 1, "one row");
    let b = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    let col = |i: usize| {
        b.column(i)
            .as_primitive::<arrow::datatypes::UInt64Type>()
            .value(0)
    };
    (col(0), col(1), col(2))
}

fn merge_meta(command: &str) -> Vec<u8> {
    meta(command, &[("merge", "true")])
}

/// Two instances' flush results, as the host concatenates them.
fn partials(a: (u64, u64, u64), b: (u64, u64, u64)) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("rows", DataType::UInt64, false),
        Field::new("batches", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
    ]));
    let batch = |t: (u64, u64, u64)| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from(vec![t.0])),
                Arc::new(UInt64Array::from(vec![t.1])),
                Arc::new(UInt64Array::from(vec![t.2])),
            ],
        )
        .unwrap()
    };
    stream(&schema, &[batch(a), batch(b)])
}

#[test]
fn count_merge_sums_flush_results_and_leaves_the_totals_alone() {
    let _g = serial();
    let (_, a) = texts(&[&[(1, Some("a")), (2, Some("b"))], &[(3, None)]]);
    let (_, b) = texts(&[&[(4, Some("d"))]]);
    // Two "instances" one after the other (the state is process-wide here).
    call(&meta("count", &[]), &a).unwrap();
    let first = call(&flush_meta("count"), &[]).unwrap();
    call(&meta("count", &[]), &b).unwrap();
    let second = call(&flush_meta("count"), &[]).unwrap();
    let (x, y) = (totals(&first), totals(&second));
    let want = (x.0 + y.0, x.1 + y.1, x.2 + y.2);
    assert_eq!(want, (4, 3, (a.len() + b.len()) as u64));

    call(&meta("count", &[]), &b).unwrap();
    let merged = call(&merge_meta("count"), &partials(x, y)).unwrap();
    assert_eq!(totals(&merged), want);
    // The merge neither added to nor reset this instance's totals.
    let flushed = call(&flush_meta("count"), &[]).unwrap();
    assert_eq!(totals(&flushed), (1, 1, b.len() as u64));
    // Same schema as a flush result, so merged and single results agree.
    assert_eq!(read(&merged).0, read(&flushed).0);
    // Nothing to merge sums to zeros; saturating, never overflowing.
    assert_eq!(totals(&call(&merge_meta("count"), &[]).unwrap()), (0, 0, 0));
    let big = partials((u64::MAX, 1, 2), (5, 1, 2));
    assert_eq!(
        totals(&call(&merge_meta("count"), &big).unwrap()),
        (u64::MAX, 2, 4)
    );
}

#[test]
fn merge_is_refused_where_it_makes_no_sense() {
    let _g = serial();
    let data = partials((1, 1, 1), (2, 2, 2));
    for command in ["test", "echo", "replace", "filter", "tokenize"] {
        let err = call(&merge_meta(command), &data).unwrap_err();
        assert_eq!(
            err,
            format!("command '{command}' keeps no state: it has nothing to merge")
        );
    }
    let err = call(&meta("count", &[("merge", "true"), ("flush", "true")]), &[]).unwrap_err();
    assert!(err.contains("cannot both be 'true'"), "{err}");
    let err = call(&meta("count", &[("merge", "yes")]), &data).unwrap_err();
    assert!(err.contains("'merge' must be 'true' or 'false'"), "{err}");
    // Data that is not flush results of `count`.
    let (_, wrong) = texts(&[&[(1, Some("a"))]]);
    let err = call(&merge_meta("count"), &wrong).unwrap_err();
    assert!(err.contains("column 'rows' not found"), "{err}");
}
