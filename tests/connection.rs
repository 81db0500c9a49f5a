//! The safe Rust API of connections: the rules its C layer relies on hold in
//! the core itself.

use std::time::Duration;

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

#[test]
fn reconnection_is_refused_on_the_embedded_driver_and_bad_delays_before_that() {
    let conn = Connection::open(None).unwrap();
    let ms = Duration::from_millis;
    let e = conn.set_reconnect(Some((ms(100), ms(1000)))).unwrap_err();
    assert_eq!(e.code, ErrorCode::NoSupport);
    assert!(e.message.contains("embedded"), "{}", e.message);
    for (min, max) in [(0, 10), (500, 100)] {
        let e = conn.set_reconnect(Some((ms(min), ms(max)))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArg, "{min} {max}");
        assert!(e.message.contains("0 < min <= max"), "{}", e.message);
    }
    conn.close().unwrap();
    assert_eq!(conn.set_reconnect(None).unwrap_err().code, ErrorCode::InvalidConn);
}
