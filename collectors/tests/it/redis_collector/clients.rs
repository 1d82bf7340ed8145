//! `redis_connected_clients` against what the server itself lists: the number of `CLIENT LIST`
//! lines, taken from a separate connection while the scrapes run.
//!
//! Both counts include the exporter's own connection: the collector keeps one connection per target
//! and runs INFO on it, so the server counts it in `connected_clients`, and it is still open when the
//! observer asks for `CLIENT LIST`. redis_exporter counts its own connection the same way; it opens
//! one per scrape, so next to ours it reads one more (ours, kept open, is in its count; its own is
//! gone when we look).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::*;

/// A plain RESP connection of the test's own, to ask the server who is connected.
struct Observer {
    reader: BufReader<TcpStream>,
}

impl Observer {
    fn connect(server: &Redis) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            reader: BufReader::new(stream),
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().unwrap()
    }

    /// `CLIENT LIST`: one line per connection the server has, this one included.
    fn client_list(&mut self) -> Vec<String> {
        self.reader
            .get_mut()
            .write_all(&resp(&[b"CLIENT", b"LIST"]))
            .unwrap();
        let mut header = String::new();
        self.reader.read_line(&mut header).unwrap();
        let length: usize = header
            .strip_prefix('$')
            .and_then(|n| n.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("CLIENT LIST answered {header:?}"));
        let mut body = vec![0; length + 2];
        self.reader.read_exact(&mut body).unwrap();
        String::from_utf8(body)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The `addr=` field of a `CLIENT LIST` line: the client's address as the server sees it.
fn client_addr(line: &str) -> SocketAddr {
    line.split(' ')
        .find_map(|field| field.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {line:?}"))
}

/// Wait until the server lists `count` clients (a connect returns before the server has accepted).
fn wait_for_clients(observer: &mut Observer, count: usize) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let list = observer.client_list();
        if list.len() == count {
            return list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "expected {count} clients, the server lists {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connected_clients_is_client_list_with_the_exporters_own_connection() {
    connected_clients_is_client_list_with_the_exporters_own_connection_on(Server::Redis).await;
}

/// [`connected_clients_is_client_list_with_the_exporters_own_connection`] on `server` (the `valkey`
/// module runs it on Valkey).
pub(super) async fn connected_clients_is_client_list_with_the_exporters_own_connection_on(
    server: Server,
) {
    let server = Redis::start(Opts {
        server,
        ..Opts::default()
    });
    let mut observer = Observer::connect(&server);
    // Three idle clients that never send a command: the server counts a connection from accept.
    let mut idle: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port())).unwrap())
        .collect();
    let observer_addr = observer.local_addr();
    let test_clients = |idle: &[TcpStream]| -> BTreeSet<SocketAddr> {
        idle.iter()
            .map(|s| s.local_addr().unwrap())
            .chain([observer_addr])
            .collect()
    };
    let expected = test_clients(&idle).len();
    wait_for_clients(&mut observer, expected);

    let collector = build(settings(&server));
    let mut exporter = None;
    for round in 0..3 {
        let outcome = scrape_ok(&collector).await;
        let reported = scalar(&outcome.families, "redis_connected_clients");
        let list = observer.client_list();
        let ours = test_clients(&idle);
        // Everything the server lists is the test's, plus exactly one: the exporter's own
        // connection, the same one every round (kept, not one per scrape).
        let others: Vec<&String> = list
            .iter()
            .filter(|l| !ours.contains(&client_addr(l)))
            .collect();
        assert_eq!(
            others.len(),
            1,
            "round {round}: clients that are neither the test's nor the exporter's: {list:#?}"
        );
        let this = client_addr(others[0]);
        assert_eq!(
            *exporter.get_or_insert(this),
            this,
            "round {round}: a new connection"
        );
        assert_eq!(
            reported,
            list.len() as f64,
            "round {round}: redis_connected_clients {reported}, CLIENT LIST {list:#?}"
        );
        assert_eq!(reported, (ours.len() + 1) as f64, "round {round}");
        // One idle client leaves before the next round: the count follows the server's.
        let gone = idle.pop().unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        let start = std::time::Instant::now();
        while observer
            .client_list()
            .iter()
            .any(|l| client_addr(l) == addr)
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{addr} still listed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
