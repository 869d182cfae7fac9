//! A TCP proxy that breaks the network on command, for tests of what
//! survives a bad network (an agent and its server, a client and its peer).
//!
//! [`FaultProxy::start`] listens on a free `127.0.0.1` port and forwards each
//! connection to a target address. Then:
//!
//! - [`FaultProxy::cut`] drops every open connection at once and closes the
//!   port, so new connections are refused (as when the peer is down);
//! - [`FaultProxy::stall`] keeps connections and accepts new ones but
//!   forwards nothing (as when packets are lost; TCP keeps waiting): what
//!   was sent arrives after [`FaultProxy::heal`];
//! - [`FaultProxy::heal`] goes back to forwarding (reopening the same port
//!   after a cut);
//! - [`FaultProxy::retarget`] sends new connections elsewhere (a server
//!   restarted on another port keeps the address its clients know);
//! - [`FaultProxy::delay_to_target`] holds each chunk sent to the target
//!   for a while before forwarding it, in order (a slow link one way).
//!
//! [`FaultProxy::start_recording`] also keeps every byte that passed in each
//! direction ([`FaultProxy::sent`], [`FaultProxy::received`],
//! [`FaultProxy::saw`]), so a test can check that a secret never crossed
//! the wire. The proxy runs on its own small runtime, so it serves
//! synchronous and asynchronous tests alike, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards everything.
    Forwarding,
    /// Accepts, forwards nothing.
    Stalled,
    /// Open connections dropped, new ones refused.
    Cut,
}

#[derive(Default)]
struct Traffic {
    sent: Vec<u8>,
    received: Vec<u8>,
}

struct Shared {
    target: Mutex<SocketAddr>,
    mode: watch::Sender<Mode>,
    listening: watch::Sender<bool>,
    open: AtomicUsize,
    accepted: AtomicUsize,
    traffic: Option<Mutex<Traffic>>,
    /// Microseconds each chunk toward the target waits before it is sent.
    delay_to_target_us: AtomicU64,
}

/// A running proxy; stops (dropping its connections) when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// How long [`FaultProxy::cut`] and [`FaultProxy::heal`] wait for the
/// proxy to get there.
const SETTLE: Duration = Duration::from_secs(10);

impl FaultProxy {
    /// Forwards a free `127.0.0.1` port to `target`, recording nothing.
    pub fn start(target: &str) -> FaultProxy {
        Self::start_inner(target, false)
    }

    /// Like [`FaultProxy::start`], keeping every byte in both directions.
    pub fn start_recording(target: &str) -> FaultProxy {
        Self::start_inner(target, true)
    }

    fn start_inner(target: &str, record: bool) -> FaultProxy {
        let target: SocketAddr = target
            .parse()
            .unwrap_or_else(|_| panic!("the proxy's target is an address and port: {target:?}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("the proxy's runtime starts");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let address = listener.local_addr().expect("the proxy's address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            mode: watch::Sender::new(Mode::Forwarding),
            listening: watch::Sender::new(true),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            traffic: record.then(|| Mutex::new(Traffic::default())),
            delay_to_target_us: AtomicU64::new(0),
        });
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener).expect("the listener joins the runtime")
        };
        runtime.spawn(listen(Arc::clone(&shared), address, listener));
        FaultProxy {
            address,
            shared,
            runtime: Some(runtime),
        }
    }

    /// From now on, each chunk a client sends waits `delay` before it is
    /// forwarded to the target (answers come back at once); chunks keep
    /// their order. `Duration::ZERO` forwards at once again.
    pub fn delay_to_target(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared
            .delay_to_target_us
            .store(micros, Ordering::SeqCst);
    }

    /// `127.0.0.1:PORT`, to give to the client instead of the target.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What it does now.
    pub fn mode(&self) -> Mode {
        *self.shared.mode.borrow()
    }

    /// Drops every open connection and refuses new ones; returns once
    /// they are closed and the port is shut.
    pub fn cut(&self) {
        self.shared.mode.send_replace(Mode::Cut);
        self.settle("cut", || {
            self.shared.open.load(Ordering::SeqCst) == 0 && !*self.shared.listening.borrow()
        });
    }

    /// Keeps connections but forwards nothing, in either direction, until
    /// [`FaultProxy::heal`]. New connections are accepted (and wait).
    pub fn stall(&self) {
        if self.mode() == Mode::Cut {
            self.heal();
        }
        self.shared.mode.send_replace(Mode::Stalled);
    }

    /// Forwards again; after a cut, returns once the port accepts again.
    pub fn heal(&self) {
        self.shared.mode.send_replace(Mode::Forwarding);
        self.settle("heal", || *self.shared.listening.borrow());
    }

    /// Forwards new connections to `target` from now on (a server that
    /// came back on another port); open ones keep theirs.
    pub fn retarget(&self, target: &str) {
        let target: SocketAddr = target
            .parse()
            .unwrap_or_else(|_| panic!("the proxy's target is an address and port: {target:?}"));
        *self.shared.target.lock().expect("the target lock") = target;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every byte forwarded from clients to the target (recording proxies).
    pub fn sent(&self) -> Vec<u8> {
        self.traffic(|traffic| traffic.sent.clone())
    }

    /// Every byte forwarded from the target to clients (recording proxies).
    pub fn received(&self) -> Vec<u8> {
        self.traffic(|traffic| traffic.received.clone())
    }

    /// Whether `needle` crossed the proxy in either direction (recording
    /// proxies; a value split across two connections is not found).
    pub fn saw(&self, needle: &[u8]) -> bool {
        self.traffic(|traffic| {
            contains(&traffic.sent, needle) || contains(&traffic.received, needle)
        })
    }

    fn traffic<T>(&self, read: impl FnOnce(&Traffic) -> T) -> T {
        let traffic = self
            .shared
            .traffic
            .as_ref()
            .expect("this proxy records nothing: start it with FaultProxy::start_recording");
        let traffic = traffic
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&traffic)
    }

    fn settle(&self, what: &str, done: impl FnMut() -> bool) {
        assert!(
            crate::wait_until(SETTLE, done),
            "the proxy did not {what} within {SETTLE:?}"
        );
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Allowed inside an asynchronous test too (unlike a plain drop).
            runtime.shutdown_background();
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Accepts while not cut; after a cut, waits to be healed and binds the
/// same port again.
async fn listen(shared: Arc<Shared>, address: SocketAddr, listener: TcpListener) {
    let mut modes = shared.mode.subscribe();
    let mut listener = Some(listener);
    loop {
        let Some(current) = listener.take() else {
            if modes.wait_for(|mode| *mode != Mode::Cut).await.is_err() {
                return;
            }
            listener = rebind(address).await;
            if listener.is_none() {
                return;
            }
            shared.listening.send_replace(true);
            continue;
        };
        tokio::select! {
            changed = modes.wait_for(|mode| *mode == Mode::Cut) => {
                drop(current);
                shared.listening.send_replace(false);
                if changed.is_err() {
                    return;
                }
            }
            accepted = current.accept() => {
                listener = Some(current);
                if let Ok((client, _)) = accepted {
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    shared.open.fetch_add(1, Ordering::SeqCst);
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        forward(&shared, client).await;
                        shared.open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        }
    }
}

async fn rebind(address: SocketAddr) -> Option<TcpListener> {
    for _ in 0..200 {
        match TcpListener::bind(address).await {
            Ok(listener) => return Some(listener),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    None
}

/// One connection: waits out a stall before connecting, then pumps both
/// ways until either side closes or the proxy is cut.
async fn forward(shared: &Shared, client: TcpStream) {
    let mut modes = shared.mode.subscribe();
    match modes.wait_for(|mode| *mode != Mode::Stalled).await {
        Ok(mode) if *mode == Mode::Forwarding => {}
        _ => return,
    }
    let target = *shared.target.lock().expect("the target lock");
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let cut = async {
        let mut modes = shared.mode.subscribe();
        let _ = modes.wait_for(|mode| *mode == Mode::Cut).await;
    };
    tokio::select! {
        () = cut => {}
        () = async {
            tokio::join!(
                pump(shared, client_read, server_write, true),
                pump(shared, server_read, client_write, false),
            );
        } => {}
    }
}

async fn pump(
    shared: &Shared,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    to_target: bool,
) {
    let mut modes = shared.mode.subscribe();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(read) => read,
        };
        // Held while stalled: it arrives after the heal, as TCP would
        // retransmit it.
        match modes.wait_for(|mode| *mode != Mode::Stalled).await {
            Ok(mode) if *mode == Mode::Forwarding => {}
            _ => return,
        }
        let delay = shared.delay_to_target_us.load(Ordering::SeqCst);
        if to_target && delay > 0 {
            tokio::time::sleep(Duration::from_micros(delay)).await;
        }
        let chunk = &buffer[..read];
        if let Some(traffic) = &shared.traffic {
            let mut traffic = traffic
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if to_target {
                traffic.sent.extend_from_slice(chunk);
            } else {
                traffic.received.extend_from_slice(chunk);
            }
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
