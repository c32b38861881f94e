//! One HTTP/1.1 keep-alive connection (hyper's client on one `TcpStream`): every request goes
//! over the same socket, so a server that drops the connection fails the next request instead
//! of being hidden by a pooling client that reconnects.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

pub struct Conn {
    sender: SendRequest<Body>,
    /// Ends when the connection closes.
    task: tokio::task::JoinHandle<()>,
}

/// A whole response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The sentence of an error body `{"error": "…"}` (panics on any other shape).
    pub fn error(&self) -> String {
        let v = self.json();
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "an error body has one field: {v}");
        v["error"].as_str().unwrap_or_else(|| panic!("no error sentence: {v}")).to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Conn {
    /// Connects to `address` (`http://127.0.0.1:PORT`).
    pub async fn open(address: &str) -> Conn {
        let stream = TcpStream::connect(address.trim_start_matches("http://")).await.expect("connect");
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.expect("HTTP/1.1 handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn { sender, task }
    }

    /// Sends one request and reads its whole response; an error means the connection failed.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Result<Answer, String> {
        self.sender.ready().await.map_err(|e| format!("connection not ready: {e}"))?;
        let mut req = Request::builder().method(method).uri(path_and_query).header("host", "127.0.0.1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.into()).map_err(|e| format!("request not built: {e}"))?;
        let resp = self.sender.send_request(req).await.map_err(|e| format!("no response: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(Body::new(body), usize::MAX).await.map_err(|e| format!("body cut: {e}"))?;
        Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    /// GET with the two auth headers.
    pub async fn get(&mut self, path_and_query: &str, key: &str, tenant: &str) -> Answer {
        let headers = [("x-api-key", key), ("x-tenant-id", tenant)];
        self.send(Method::GET, path_and_query, &headers, Body::empty()).await.expect("a response")
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed() || self.task.is_finished()
    }
}
