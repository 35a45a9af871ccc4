//! The native reference of the plugin benchmark (docs/benchmarks.md, "Plugin host"): the same
//! answer as the `hello` plugin from a bare axum handler over plain HTTP/1.1.
//!
//! Usage: hello_plain ADDR

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8082".into());
    let app = Router::new().fallback(get(|| async {
        (
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Hello from a Megalis plugin\n",
        )
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on {addr}");
    axum::serve(listener, app).await.expect("serve");
}
