//! The HTTP server: an accept loop over hyper's HTTP/1 connection builder (after axum's
//! `serve-with-hyper` example) instead of `axum::serve`, which cannot set a header-read timeout.
//! Without one, a client that opens connections and sends headers slowly, or never, holds a
//! connection and its task for as long as it likes.
//!
//! hyper starts the header-read timer whenever a connection waits for a request head: when it
//! opens and after each response. So `header_read_timeout` also closes keep-alive connections
//! idle that long (clients reconnect; a dashboard polling every few seconds keeps its own).
//!
//! Shutdown: on `shutdown` the listener closes, idle connections close at once, and requests in
//! flight finish (each bounded by the request timeout) within `drain`.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// After a failed `accept` (out of file descriptors, mostly), wait this long before the next:
/// retrying at once would spin a core while nothing can be accepted. axum::serve does the same.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `shutdown`, then drains connections for up to `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    drain: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Responses are small and whole: send them without waiting for Nagle's timer.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that goes away or times out reading headers ends here: nothing to do.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => {
            tracing::warn!(?drain, "connections still open after the drain time; closing them");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use axum::routing::get;
    use hyper::client::conn::http1;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::api::guard;

    async fn panics() -> &'static str {
        panic!("a bug in a handler")
    }

    /// The production layers around routes that panic, hang or answer; served on port 0.
    async fn start(header_read_timeout: Duration) -> (String, CancellationToken, tokio::task::JoinHandle<()>) {
        let routes: Router = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route("/panic", get(panics))
            .route("/slow", get(|| tokio::time::sleep(Duration::from_secs(5))));
        let app = guard::protect(routes, Duration::from_millis(100));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let server = tokio::spawn({
            let stop = stop.clone();
            async move { serve(listener, app, header_read_timeout, Duration::from_secs(2), stop).await.unwrap() }
        });
        (address, stop, server)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_answer_json_on_a_connection_that_stays_open_and_shutdown_drains() {
        let (address, stop, server) = start(Duration::from_secs(10)).await;
        let stream = TcpStream::connect(&address).await.unwrap();
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        let conn = tokio::spawn(conn);
        let cases = [
            (Method::GET, "/panic", StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            (Method::GET, "/slow", StatusCode::GATEWAY_TIMEOUT, "limit of 100 ms"),
            (Method::GET, "/missing", StatusCode::NOT_FOUND, "no endpoint GET /missing"),
            (Method::DELETE, "/ok", StatusCode::METHOD_NOT_ALLOWED, "/ok does not accept DELETE"),
            (Method::GET, "/panic", StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        ];
        for (method, path, status, sentence) in cases {
            sender.ready().await.expect("the connection is still open");
            let req = Request::builder().method(method).uri(path).header("host", "x").body(Body::empty()).unwrap();
            let resp = sender.send_request(req).await.expect("a response");
            assert_eq!(resp.status(), status, "{path}");
            let body = axum::body::to_bytes(Body::new(resp.into_body()), 1 << 16).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
            assert!(body["error"].as_str().unwrap().contains(sentence), "{path}: {body}");
        }
        sender.ready().await.unwrap();
        let req = Request::builder().uri("/ok").header("host", "x").body(Body::empty()).unwrap();
        assert_eq!(sender.send_request(req).await.unwrap().status(), StatusCode::OK);
        // Shutdown with this connection open and idle: it is closed, and serve returns.
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(1), server).await.expect("serve returned").unwrap();
        tokio::time::timeout(Duration::from_secs(1), conn).await.expect("the idle connection was closed").unwrap().ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_without_a_whole_request_head_is_closed() {
        let (address, stop, _server) = start(Duration::from_millis(200)).await;
        let mut slow = TcpStream::connect(&address).await.unwrap();
        slow.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut rest)).await.expect("closed").unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
        stop.cancel();
    }
}
