//! The index against the decoded form: every attribute of resources, scopes and items is
//! listed with its owner, key and value, in wire order; edits applied to the bytes decode to
//! what the same edits made to the decoded form give.

use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::proto::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
use crate::proto::metrics::v1::metric;
use crate::{Batch, Payload, testkit};

/// Calls `f` on every attribute the index lists, in wire order, with its owner.
fn each_attr(payload: &mut Payload, mut f: impl FnMut(Owner, &mut KeyValue)) {
    let (mut res, mut scopes, mut items) = (0, 0, 0);
    let owner = |n: &mut u32, make: fn(u32) -> Owner| {
        *n += 1;
        make(*n - 1)
    };
    macro_rules! attrs {
        ($list:expr, $o:expr) => {
            for kv in $list.iter_mut() {
                f($o, kv);
            }
        };
    }
    match payload {
        Payload::Logs(req) => {
            for r in &mut req.resource_logs {
                if let Some(resource) = &mut r.resource {
                    let o = owner(&mut res, Owner::Resource);
                    attrs!(resource.attributes, o);
                }
                for s in &mut r.scope_logs {
                    if let Some(scope) = &mut s.scope {
                        let o = owner(&mut scopes, Owner::Scope);
                        attrs!(scope.attributes, o);
                    }
                    for rec in &mut s.log_records {
                        let o = owner(&mut items, Owner::Item);
                        attrs!(rec.attributes, o);
                    }
                }
            }
        }
        Payload::Traces(req) => {
            for r in &mut req.resource_spans {
                if let Some(resource) = &mut r.resource {
                    let o = owner(&mut res, Owner::Resource);
                    attrs!(resource.attributes, o);
                }
                for s in &mut r.scope_spans {
                    if let Some(scope) = &mut s.scope {
                        let o = owner(&mut scopes, Owner::Scope);
                        attrs!(scope.attributes, o);
                    }
                    for span in &mut s.spans {
                        let o = owner(&mut items, Owner::Item);
                        attrs!(span.attributes, o);
                    }
                }
            }
        }
        Payload::Metrics(req) => {
            for r in &mut req.resource_metrics {
                if let Some(resource) = &mut r.resource {
                    let o = owner(&mut res, Owner::Resource);
                    attrs!(resource.attributes, o);
                }
                for s in &mut r.scope_metrics {
                    if let Some(scope) = &mut s.scope {
                        let o = owner(&mut scopes, Owner::Scope);
                        attrs!(scope.attributes, o);
                    }
                    for m in &mut s.metrics {
                        match &mut m.data {
                            Some(metric::Data::Gauge(g)) => {
                                for p in &mut g.data_points {
                                    let o = owner(&mut items, Owner::Item);
                                    attrs!(p.attributes, o);
                                }
                            }
                            Some(metric::Data::Sum(g)) => {
                                for p in &mut g.data_points {
                                    let o = owner(&mut items, Owner::Item);
                                    attrs!(p.attributes, o);
                                }
                            }
                            Some(metric::Data::Histogram(g)) => {
                                for p in &mut g.data_points {
                                    let o = owner(&mut items, Owner::Item);
                                    attrs!(p.attributes, o);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}

/// Every kind of value, strings of several lengths among them.
fn extra(n: usize) -> Vec<KeyValue> {
    let v = |value| KeyValue {
        key: format!("k{n}"),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    };
    vec![
        testkit::kv("voice.caller.number", format!("+4420{n:08}")),
        testkit::kv("long", "é".repeat(70 + n)),
        v(any_value::Value::BoolValue(n.is_multiple_of(2))),
        v(any_value::Value::DoubleValue(n as f64 / 3.0)),
        v(any_value::Value::BytesValue(vec![n as u8; 3])),
        v(any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::IntValue(-(n as i64))),
            }],
        })),
        v(any_value::Value::KvlistValue(KeyValueList {
            values: vec![testkit::kv("inner", "x")],
        })),
        KeyValue {
            key: "empty".into(),
            value: None,
            ..Default::default()
        },
    ]
}

/// Test batches of every signal, with [`extra`] attributes on every resource, scope and item.
fn rich() -> Vec<Batch> {
    let mut out = Vec::new();
    for batch in [
        testkit::logs(2, 3),
        testkit::traces(2, 2),
        testkit::metrics(1, 3),
    ] {
        let mut payload = batch.into_payload();
        let mut n = 0;
        add_extra(&mut payload, &mut n);
        out.push(Batch::new(payload));
    }
    out
}

fn add_extra(payload: &mut Payload, n: &mut usize) {
    let mut next = || {
        *n += 1;
        extra(*n)
    };
    match payload {
        Payload::Logs(req) => {
            for r in &mut req.resource_logs {
                if let Some(res) = &mut r.resource {
                    res.attributes.extend(next());
                }
                for s in &mut r.scope_logs {
                    if let Some(scope) = &mut s.scope {
                        scope.attributes.extend(next());
                    }
                    for rec in &mut s.log_records {
                        rec.attributes.extend(next());
                    }
                }
            }
        }
        Payload::Traces(req) => {
            for r in &mut req.resource_spans {
                if let Some(res) = &mut r.resource {
                    res.attributes.extend(next());
                }
                for s in &mut r.scope_spans {
                    for span in &mut s.spans {
                        span.attributes.extend(next());
                    }
                }
            }
        }
        Payload::Metrics(req) => {
            for r in &mut req.resource_metrics {
                for s in &mut r.scope_metrics {
                    for m in &mut s.metrics {
                        if let Some(metric::Data::Gauge(g)) = &mut m.data {
                            for p in &mut g.data_points {
                                p.attributes.extend(next());
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The view's value as the decoded form holds it.
fn decoded(v: Value<'_>) -> Option<AnyValue> {
    use any_value::Value as V;
    let value = match v {
        Value::Empty => return None,
        Value::Str(s) => V::StringValue(s.into()),
        Value::Bool(b) => V::BoolValue(b),
        Value::Int(i) => V::IntValue(i),
        Value::Double(d) => V::DoubleValue(d),
        Value::Bytes(b) => V::BytesValue(b.to_vec()),
        Value::Array(b) => V::ArrayValue(ArrayValue::decode(b).ok()?),
        Value::KvList(b) => V::KvlistValue(KeyValueList::decode(b).ok()?),
        Value::StrIndex(i) => V::StringValueStrindex(i),
    };
    Some(AnyValue { value: Some(value) })
}

#[test]
fn the_index_lists_every_attribute_with_its_owner_key_and_value() {
    for batch in rich() {
        let bytes = batch.encode_protobuf();
        let view = BatchView::new(batch.signal(), &bytes).unwrap();
        let mut want = Vec::new();
        each_attr(&mut batch.payload().clone(), |o, kv| {
            want.push((o, kv.clone()))
        });
        let got: Vec<_> = view
            .attributes()
            .map(|a| {
                (
                    a.owner,
                    KeyValue {
                        key: a.key().into(),
                        value: decoded(a.value()),
                        ..Default::default()
                    },
                )
            })
            .collect();
        assert!(
            want.len() > 20,
            "{}: too few attributes to prove much",
            batch.signal()
        );
        assert_eq!(got, want, "{}", batch.signal());
        // A view from the same index, as a guest gets it, reads the same.
        let again = BatchView::with_index(batch.signal(), &bytes, view.index()).unwrap();
        assert_eq!(again.attributes().count(), want.len());
    }
}

#[test]
fn a_repeated_value_resolves_as_a_decode_does() {
    // A KeyValue whose `value` occurs twice: the messages merge, the last variant wins.
    let mut bytes = Vec::new();
    let kv = {
        let mut kv = KeyValue {
            key: "k".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("first".into())),
            }),
            ..Default::default()
        }
        .encode_to_vec();
        kv.extend(
            KeyValue {
                key: String::new(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(7)),
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        kv
    };
    // resource_logs { resource { attributes: kv } }
    let resource = [vec![0x0a, kv.len() as u8], kv].concat();
    let rl = [vec![0x0a, resource.len() as u8], resource].concat();
    bytes.extend([vec![0x0a, rl.len() as u8], rl].concat());
    let view = BatchView::new(Signal::Logs, &bytes).unwrap();
    let a = view.attribute(0).unwrap();
    let Payload::Logs(req) = Batch::decode_protobuf(Signal::Logs, &bytes)
        .unwrap()
        .into_payload()
    else {
        unreachable!()
    };
    let kv = &req.resource_logs[0].resource.as_ref().unwrap().attributes[0];
    assert_eq!(a.key(), kv.key);
    assert_eq!(decoded(a.value()), kv.value);
    assert_eq!(a.value(), Value::Int(7));
}

/// Edits every string value the index lists with `new`, through the bytes and through the
/// decoded form, and compares.
fn edit_both(batch: &Batch, new: impl Fn(u32, &str) -> Option<String>) {
    let bytes = batch.encode_protobuf();
    let view = BatchView::new(batch.signal(), &bytes).unwrap();
    let mut edits = Edits::new();
    for a in view.attributes() {
        if let Some(value) = a.as_str().and_then(|s| new(a.id, s)) {
            edits.set(a.id, &value);
        }
    }
    let out = view.apply(&edits).unwrap();
    let mut want = batch.payload().clone();
    let mut id = 0;
    each_attr(&mut want, |_, kv| {
        if let Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) = &mut kv.value
            && let Some(n) = new(id, s)
        {
            *s = n;
        }
        id += 1;
    });
    let got = Batch::decode_protobuf(batch.signal(), &out).unwrap();
    assert_eq!(got.payload(), &want, "{}", batch.signal());
    assert_eq!(
        crate::wire::validate(batch.signal(), &out).unwrap(),
        batch.len()
    );
}

#[test]
fn edits_decode_to_the_same_edits_made_decoded() {
    for batch in rich() {
        // Shorter, longer (past 127 and 16383 bytes: every enclosing length prefix widens),
        // empty, and some left alone.
        edit_both(&batch, |id, s| match id % 5 {
            0 => Some("*".repeat(s.len() / 2)),
            1 => Some(format!("{s}{}", "+".repeat(200))),
            2 => Some(String::new()),
            3 => None,
            _ => Some("x".repeat(17_000)),
        });
        // No edit at all gives the same bytes.
        let bytes = batch.encode_protobuf();
        let view = BatchView::new(batch.signal(), &bytes).unwrap();
        assert_eq!(view.apply(&Edits::new()).unwrap(), bytes);
    }
}

#[test]
fn empty_strings_can_be_edited_wherever_they_end() {
    // Empty values last in their record, first, and between others; at every level.
    let mut payload = testkit::logs(1, 3).into_payload();
    if let Payload::Logs(req) = &mut payload {
        let scope = &mut req.resource_logs[0].scope_logs[0];
        scope
            .scope
            .as_mut()
            .unwrap()
            .attributes
            .push(testkit::kv("s", ""));
        for (i, r) in scope.log_records.iter_mut().enumerate() {
            r.attributes.insert(0, testkit::kv("first", ""));
            r.attributes.insert(2, testkit::kv("middle", ""));
            r.attributes.push(testkit::kv("last", ""));
            // The last record ends with its attributes: nothing follows the empty value.
            if i == 2 {
                r.trace_id.clear();
                r.span_id.clear();
            }
        }
        req.resource_logs[0]
            .resource
            .as_mut()
            .unwrap()
            .attributes
            .push(testkit::kv("r", ""));
    }
    let batch = Batch::new(payload);
    edit_both(&batch, |id, s| s.is_empty().then(|| format!("filled-{id}")));
    edit_both(&batch, |_, s| s.is_empty().then(String::new));
}

#[test]
fn bad_edits_are_refused() {
    let batch = &rich()[0];
    let bytes = batch.encode_protobuf();
    let view = BatchView::new(batch.signal(), &bytes).unwrap();
    let not_string = view.attributes().find(|a| a.as_str().is_none()).unwrap().id;
    let string = view.attributes().find(|a| a.as_str().is_some()).unwrap().id;
    let edit = |attributes: &[u32]| {
        let mut e = Edits::new();
        for a in attributes {
            e.set(*a, "v");
        }
        e
    };
    let err = view.apply(&edit(&[not_string])).unwrap_err();
    assert!(err.0.contains("does not hold a string"), "{err}");
    let err = view.apply(&edit(&[view.len() as u32])).unwrap_err();
    assert!(err.0.contains("but the batch has"), "{err}");
    let err = view.apply(&edit(&[string, string])).unwrap_err();
    assert!(err.0.contains("same attribute"), "{err}");
    // Edits from arrays (as a guest sends them) are checked.
    let two = edit(&[string, not_string]);
    let (a, ends, values) = two.clone().into_parts();
    assert_eq!(
        Edits::from_parts(a.clone(), ends, values.clone()).unwrap(),
        two
    );
    assert!(Edits::from_parts(a.clone(), vec![1], values.clone()).is_err());
    assert!(Edits::from_parts(a.clone(), vec![2, 1], values.clone()).is_err());
    assert!(Edits::from_parts(a, vec![1, 9], values).is_err());
    assert!(Edits::from_parts(vec![0], vec![1], "é".into()).is_err());
    // An index that points past the bytes is refused before it is read.
    let mut index = view.index().to_vec();
    index[4] = bytes.len() as u32;
    assert!(BatchView::with_index(batch.signal(), &bytes, &index).is_err());
    assert!(BatchView::with_index(batch.signal(), &bytes, &index[..5]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_string_edits_round_trip(lens in proptest::collection::vec(0usize..400, 1..40), skip in 0u32..4) {
        let batch = &rich()[0];
        edit_both(batch, |id, _| {
            if id % 4 == skip {
                None
            } else {
                Some("ü".repeat(lens[id as usize % lens.len()]))
            }
        });
    }
}
