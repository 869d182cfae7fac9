//! The fault-injecting proxy against a real HTTP server on 127.0.0.1: it
//! forwards and records, a cut drops open connections and refuses new ones
//! until healed, a stall holds traffic until healed.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tako_test_support::fault_proxy::{FaultProxy, Mode};
use tako_test_support::http::{Receiver, request};
use tako_test_support::wait_until;

fn receiver_address(receiver: &Receiver) -> String {
    receiver.url("").trim_start_matches("http://").to_owned()
}

#[test]
fn it_forwards_both_ways_and_records_what_crossed() {
    let server = Receiver::start();
    let proxy = FaultProxy::start_recording(&receiver_address(&server));
    let answer = request(
        &proxy.address(),
        "POST",
        "/hook",
        &[("Content-Type", "text/plain")],
        b"token=s3cr3t-on-the-wire",
    )
    .expect("the request passes the proxy");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "ok");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body, b"token=s3cr3t-on-the-wire");

    assert!(proxy.saw(b"s3cr3t-on-the-wire"));
    assert!(proxy.saw(b"POST /hook HTTP/1.1"));
    assert!(!proxy.saw(b"a value that was never sent"));
    let received = String::from_utf8_lossy(&proxy.received()).into_owned();
    assert!(received.starts_with("HTTP/1.1 200 OK"), "{received}");
    assert!(!String::from_utf8_lossy(&proxy.sent()).contains("HTTP/1.1 200 OK"));
    assert_eq!(proxy.connections(), 1);
}

#[test]
fn a_cut_drops_open_connections_and_refuses_new_ones_until_healed() {
    let server = Receiver::start();
    let proxy = FaultProxy::start(&receiver_address(&server));

    // A request whose body never finishes: the server waits for the rest.
    let mut open = TcpStream::connect(proxy.address()).expect("the proxy accepts");
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    open.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || proxy.connections() == 1));

    proxy.cut();
    assert_eq!(proxy.mode(), Mode::Cut);
    let mut rest = Vec::new();
    match open.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "no answer after a cut: {rest:?}"),
        Err(error) => assert!(
            !matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the open connection was not dropped: {error}"
        ),
    }
    let refused = request(&proxy.address(), "GET", "/", &[], b"").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

    proxy.heal();
    let answer = request(&proxy.address(), "GET", "/after", &[], b"").expect("healed");
    assert_eq!(answer.status, 200);
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/after"], "the cut request never completed");
}

#[test]
fn a_stall_holds_traffic_until_healed() {
    let server = Receiver::start();
    let proxy = FaultProxy::start(&receiver_address(&server));
    proxy.stall();
    let address = proxy.address();
    let client = std::thread::spawn(move || request(&address, "GET", "/stalled", &[], b""));
    assert!(wait_until(Duration::from_secs(10), || proxy.connections() == 1));
    // Accepted, yet nothing reaches the server while stalled.
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.requests().is_empty());
    assert!(!client.is_finished());

    proxy.heal();
    let answer = client
        .join()
        .expect("the client thread ends")
        .expect("the request completes after the heal");
    assert_eq!(answer.status, 200);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_stall_mid_connection_holds_the_answer_and_a_cut_ends_it() {
    let server = Receiver::start();
    let proxy = FaultProxy::start(&receiver_address(&server));
    let mut open = TcpStream::connect(proxy.address()).expect("the proxy accepts");
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    open.write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || proxy.connections() == 1));
    proxy.stall();
    // The rest of the body is held, so the server never completes it.
    open.write_all(b"cd").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.requests().is_empty());
    proxy.cut();
    let mut rest = Vec::new();
    let _ = open.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert!(server.requests().is_empty());
}
