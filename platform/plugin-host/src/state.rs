//! What a `Store` holds for one request: WASI with nothing behind it, wasi:http, the limits and
//! the capability context.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::access::Principal;
use crate::host::Services;

/// The request-level facts a plugin may read through `context`.
pub(crate) struct CallContext {
    pub plugin: Arc<str>,
    pub principal: Principal,
    pub request_id: String,
    pub patient: Option<String>,
    pub config: Arc<BTreeMap<String, String>>,
    pub source_address: Option<String>,
    /// Core event topics the manifest subscribes to.
    pub subscriptions: Arc<std::collections::BTreeSet<String>>,
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoEgress,
    /// WASI's resources and the capabilities' own (uploads, downloads).
    pub(crate) table: ResourceTable,
    /// Uploads and downloads open in this request (capped: each holds a task or a stream).
    pub(crate) open_blob_handles: usize,
    pub limiter: Limiter,
    pub call: CallContext,
    pub services: Arc<Services>,
}

impl HostState {
    pub fn new(call: CallContext, services: Arc<Services>, limiter: Limiter) -> HostState {
        let mut wasi = WasiCtx::builder();
        // Nothing behind WASI: no preopened directory, no environment, no arguments, no
        // sockets, no name lookup, an empty stdin. stdout and stderr go to the host log.
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .stdout(LogStream {
                plugin: call.plugin.clone(),
                stream: "stdout",
            })
            .stderr(LogStream {
                plugin: call.plugin.clone(),
                stream: "stderr",
            });
        HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: NoEgress,
            table: ResourceTable::new(),
            open_blob_handles: 0,
            limiter,
            call,
            services,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outgoing HTTP is not a capability of `megalis:platform@0.1.0`: the `outgoing-handler`
/// import is refused at load, and this refuses anything that would still get here.
struct NoEgress;

impl WasiHttpHooks for NoEgress {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// The memory limit was hit: the instance traps with this error.
#[derive(Debug)]
pub(crate) struct MemoryLimitExceeded;

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("memory limit exceeded")
    }
}

impl std::error::Error for MemoryLimitExceeded {}

/// The deadline passed: the instance traps with this error.
#[derive(Debug)]
pub(crate) struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Counts linear memory over every memory of the store (a component has several core
/// instances) and traps on the growth that would pass the limit, rather than letting
/// `memory.grow` fail quietly and the guest limp on.
pub(crate) struct Limiter {
    pub max_memory: u64,
    pub max_table_elements: usize,
    pub used: u64,
    pub high_water: u64,
}

impl Limiter {
    pub fn new(max_memory: u64, max_table_elements: usize) -> Limiter {
        Limiter {
            max_memory,
            max_table_elements,
            used: 0,
            high_water: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used - current as u64 + desired as u64;
        if total > self.max_memory {
            return Err(wasmtime::Error::new(MemoryLimitExceeded));
        }
        self.used = total;
        self.high_water = self.high_water.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            return Err(wasmtime::Error::msg(format!(
                "table of {desired} elements exceeds the limit of {}",
                self.max_table_elements
            )));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        4
    }
}

/// A guest's stdout or stderr, written line by line to the host log.
struct LogStream {
    plugin: Arc<str>,
    stream: &'static str,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LogWriter {
            plugin: self.plugin.clone(),
            stream: self.stream,
            line: Vec::new(),
        })
    }
}

/// Longest line kept before it is logged anyway, so a guest cannot grow host memory by never
/// writing a newline.
const MAX_LINE: usize = 4096;

struct LogWriter {
    plugin: Arc<str>,
    stream: &'static str,
    line: Vec<u8>,
}

impl LogWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        tracing::info!(plugin = %self.plugin, stream = self.stream, "{}", text.trim_end());
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for LogWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        for &b in buf {
            if b == b'\n' {
                self.emit();
            } else {
                self.line.push(b);
                if self.line.len() >= MAX_LINE {
                    self.emit();
                }
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.emit();
    }
}
