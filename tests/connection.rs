//! The safe Rust API of connections: the rules its C layer relies on hold in
//! the core itself.

use virevent::{Connection, ErrorCode, Filter};

#[test]
fn a_queue_limit_of_zero_is_refused_and_changes_nothing() {
    let conn = Connection::open(None).unwrap();
    let err = conn.set_queue_limit(0).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArg);
    assert!(err.message.contains("at least 1"), "{}", err.message);
    // The limit is still the default: nothing is dropped at 1.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    conn.add_handler(Filter::All, move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    for _ in 0..3 {
        conn.emit(r#"<event type="t"/>"#).unwrap();
    }
    assert_eq!(conn.deliver().unwrap(), 3);
    conn.set_queue_limit(1).unwrap();
    conn.close().unwrap();
}

#[test]
fn closing_twice_is_harmless_and_later_calls_fail() {
    let conn = Connection::open(Some("test:///empty")).unwrap();
    conn.close().unwrap();
    conn.close().unwrap();
    assert_eq!(conn.emit(r#"<event type="t"/>"#).unwrap_err().code, ErrorCode::InvalidConn);
    assert_eq!(conn.deliver().unwrap_err().code, ErrorCode::InvalidConn);
}
