//! A real HTTP forward proxy on loopback, as a corporate proxy would be: `CONNECT
//! host:port` opens a tunnel (https through the proxy), and absolute-form requests
//! (`GET http://host:port/path HTTP/1.1`, plain http through the proxy) are sent on to
//! the target in origin form and the answer relayed back. It records the request line of
//! every request it handled, so a test can prove which requests went through it.
//!
//! One thread per direction per connection. Requests on a kept-alive client connection
//! are parsed one by one (Content-Length or chunked bodies) so each is recorded; answers
//! are relayed byte for byte. A request for another target than the connection's first
//! ends the connection (a client then opens a new one), which keeps the relay simple.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct ForwardProxy {
    addr: std::net::SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    stopped: Arc<AtomicBool>,
}

impl ForwardProxy {
    pub fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (record, stop) = (lines.clone(), stopped.clone());
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(socket) = socket else { continue };
                let record = record.clone();
                std::thread::spawn(move || serve(socket, &record));
            }
        });
        ForwardProxy {
            addr,
            lines,
            stopped,
        }
    }

    /// `http://127.0.0.1:PORT`, for HTTP_PROXY / HTTPS_PROXY.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The request lines handled so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets the lines recorded so far.
    pub fn clear(&self) {
        if let Ok(mut l) = self.lines.lock() {
            l.clear();
        }
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A request head: its first line and its header lines (raw, without CRLF).
struct Head {
    line: String,
    headers: Vec<String>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Reads one request head; `None` at a clean end of the connection or on garbage.
fn read_head(reader: &mut impl BufRead) -> Option<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let line = line.trim_end().to_owned();
    if line.is_empty() {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        headers.push(h.to_owned());
    }
    Some(Head { line, headers })
}

fn serve(client: TcpStream, record: &Mutex<Vec<String>>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(client_write) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(client);
    let Some(head) = read_head(&mut reader) else {
        return;
    };
    if let Ok(mut r) = record.lock() {
        r.push(head.line.clone());
    }
    let mut parts = head.line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    if method.eq_ignore_ascii_case("CONNECT") {
        tunnel(reader, client_write, &target);
    } else {
        relay(reader, client_write, head, record);
    }
}

/// `CONNECT host:port`: 200, then bytes both ways until either side closes.
fn tunnel(mut reader: BufReader<TcpStream>, mut client: TcpStream, target: &str) {
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let Ok(mut up_read) = upstream.try_clone() else {
        return;
    };
    let mut up_write = upstream;
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client);
        let _ = client.shutdown(Shutdown::Write);
    });
    // Whatever the client sent after the head (a TLS ClientHello) is in the reader's buffer.
    let _ = std::io::copy(&mut reader, &mut up_write);
    let _ = up_write.shutdown(Shutdown::Write);
    let _ = back.join();
}

/// `host:port` of an absolute-form http URL, and the origin-form target.
fn split_absolute(target: &str) -> Option<(String, String)> {
    let rest = target.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((authority, path.to_owned()))
}

/// Absolute-form requests: sends each to the target in origin form; answers flow back.
fn relay(
    mut reader: BufReader<TcpStream>,
    mut client: TcpStream,
    first: Head,
    record: &Mutex<Vec<String>>,
) {
    let target = first.line.split_whitespace().nth(1).unwrap_or_default();
    let Some((authority, _)) = split_absolute(target) else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    let Ok(upstream) = TcpStream::connect(&authority) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    let Ok(mut up_read) = upstream.try_clone() else {
        return;
    };
    let mut up_write = upstream;
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client);
        let _ = client.shutdown(Shutdown::Both);
    });
    let mut head = first;
    loop {
        let mut parts = head.line.splitn(3, ' ');
        let (method, target, version) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or("HTTP/1.1"),
        );
        let Some((this_authority, path)) = split_absolute(target) else {
            break;
        };
        if this_authority != authority {
            break;
        }
        let mut out = format!("{method} {path} {version}\r\n");
        for h in &head.headers {
            let name = h.split(':').next().unwrap_or_default().trim();
            if name.eq_ignore_ascii_case("proxy-connection")
                || name.eq_ignore_ascii_case("proxy-authorization")
            {
                continue;
            }
            out.push_str(h);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        if up_write.write_all(out.as_bytes()).is_err() {
            break;
        }
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let sent = if chunked {
            copy_chunked(&mut reader, &mut up_write)
        } else {
            let length = head
                .header("content-length")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            std::io::copy(&mut (&mut reader).take(length), &mut up_write).ok() == Some(length)
        };
        if !sent {
            break;
        }
        let Some(next) = read_head(&mut reader) else {
            break;
        };
        if let Ok(mut r) = record.lock() {
            r.push(next.line.clone());
        }
        head = next;
    }
    let _ = up_write.shutdown(Shutdown::Both);
    let _ = back.join();
}

/// Copies one chunked body (chunks, the last chunk and the trailers) as it is.
fn copy_chunked(reader: &mut BufReader<TcpStream>, out: &mut TcpStream) -> bool {
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line).unwrap_or(0) == 0 {
            return false;
        }
        if out.write_all(size_line.as_bytes()).is_err() {
            return false;
        }
        let size_hex = size_line.trim().split(';').next().unwrap_or_default();
        let Ok(size) = u64::from_str_radix(size_hex.trim(), 16) else {
            return false;
        };
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t).unwrap_or(0) == 0 {
                    return false;
                }
                if out.write_all(t.as_bytes()).is_err() {
                    return false;
                }
                if t.trim().is_empty() {
                    return true;
                }
            }
        }
        // The data and its CRLF.
        if std::io::copy(&mut (&mut *reader).take(size + 2), out).ok() != Some(size + 2) {
            return false;
        }
    }
}
