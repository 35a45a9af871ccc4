//! The one wasmtime engine of the process and what belongs to it: the epoch ticker, the
//! instance allocator and the compile cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::PluginError;
use crate::config::PluginLimits;

/// Engine-wide settings, from the platform configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Plugin instances alive at once on this server, all plugins together; sizes the pool.
    pub max_instances: u32,
    /// Period of the epoch ticker: the granularity of deadlines and of yielding to other tasks.
    pub epoch_tick: Duration,
    /// Limits of a plugin whose manifest and grants say nothing.
    pub default_limits: PluginLimits,
    /// No plugin gets more linear memory than this, whatever its manifest or grants say.
    pub max_memory_bytes: u64,
    /// Directory of wasmtime's compiled-code cache (keyed by module and engine version);
    /// `None` keeps compiled code in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Try the pooling allocator first (falls back to on-demand when it cannot reserve its
    /// address space).
    pub pooling: bool,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_instances: 256,
            epoch_tick: Duration::from_millis(10),
            default_limits: PluginLimits {
                memory_bytes: 64 << 20,
                timeout: Duration::from_secs(5),
                max_concurrency: 64,
                table_elements: 20_000,
            },
            max_memory_bytes: 256 << 20,
            cache_dir: None,
            pooling: true,
        }
    }
}

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    Pooling,
    OnDemand,
}

struct Inner {
    engine: Engine,
    settings: EngineSettings,
    allocator: Allocator,
    stop_ticker: Arc<AtomicBool>,
    /// Compiled components by module digest: a reload or a second plugin on the same module
    /// does not compile again.
    compiled: Mutex<HashMap<String, Component>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Cheap to clone; the ticker stops when the last clone is dropped.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

impl PluginEngine {
    pub fn new(settings: EngineSettings) -> Result<PluginEngine, PluginError> {
        let (engine, allocator) = if settings.pooling {
            match Engine::new(&engine_config(&settings, true)?) {
                Ok(engine) => (engine, Allocator::Pooling),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "plugin host: the pooling allocator cannot reserve its memory; \
                         falling back to on-demand allocation"
                    );
                    (new_engine(&settings, false)?, Allocator::OnDemand)
                }
            }
        } else {
            (new_engine(&settings, false)?, Allocator::OnDemand)
        };
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), settings.epoch_tick, stop_ticker.clone())?;
        tracing::info!(
            allocator = ?allocator,
            max_instances = settings.max_instances,
            tick_ms = settings.epoch_tick.as_millis() as u64,
            "plugin engine ready"
        );
        Ok(PluginEngine {
            inner: Arc::new(Inner {
                engine,
                settings,
                allocator,
                stop_ticker,
                compiled: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    pub fn allocator(&self) -> Allocator {
        self.inner.allocator
    }

    /// The compiled component of a module, compiling it (off the async executor) on first use.
    pub async fn compile(
        &self,
        plugin: &str,
        digest: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<Component, PluginError> {
        if let Some(c) = self.cached(digest) {
            return Ok(c);
        }
        let engine = self.inner.engine.clone();
        let compiled = tokio::task::spawn_blocking(move || Component::new(&engine, &*bytes))
            .await
            .map_err(|e| PluginError::Engine(format!("compile task failed: {e}")))?
            .map_err(|e| PluginError::Compile {
                plugin: plugin.to_owned(),
                reason: format!("{e:#}"),
            })?;
        self.lock_compiled()
            .insert(digest.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn cached(&self, digest: &str) -> Option<Component> {
        self.lock_compiled().get(digest).cloned()
    }

    /// Forgets compiled modules no installed plugin uses any more.
    pub fn retain_compiled(&self, digests: &[&str]) {
        self.lock_compiled()
            .retain(|d, _| digests.contains(&d.as_str()));
    }

    fn lock_compiled(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        // Inserting a clone cannot be interrupted half-way: a poisoned map is still whole.
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn new_engine(settings: &EngineSettings, pooling: bool) -> Result<Engine, PluginError> {
    Engine::new(&engine_config(settings, pooling)?)
        .map_err(|e| PluginError::Engine(format!("{e:#}")))
}

fn engine_config(settings: &EngineSettings, pooling: bool) -> Result<Config, PluginError> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // Copy-on-write images make instantiation a matter of mapping pages.
        .memory_init_cow(true)
        .parallel_compilation(true);
    if let Some(dir) = &settings.cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        let cache = wasmtime::Cache::new(cache)
            .map_err(|e| PluginError::Engine(format!("compile cache {}: {e:#}", dir.display())))?;
        config.cache(Some(cache));
    }
    if pooling {
        let n = settings.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust component is a handful of core instances (the program, shims for the
        // canonical ABI) with one memory and a few tables; the budget below leaves room.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_memories_per_component(2)
            .max_tables_per_component(8)
            .max_core_instances_per_component(16)
            .table_elements(settings.default_limits.table_elements)
            .max_memory_size(settings.max_memory_bytes as usize);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(config)
}

fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<(), PluginError> {
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker: {e}")))
}
