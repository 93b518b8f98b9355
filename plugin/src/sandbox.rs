//! Dynamic analysis: the entry module runs in `wasmi` with a fuel budget (deterministic CPU
//! accounting), a memory limit (a resource limiter on every `memory.grow`) and a wall-clock
//! timeout (checked at every host call and after the run), through the host interface of
//! [`crate::wasm::HOST_FUNCTIONS`].
//!
//! Every outbound request goes through the **zero-trust connector** ([`Connector`]), which
//! decides it per call against the plugin's declared `net:` permissions and the tenant's egress
//! rules and records the outcome. Nothing leaves the machine: an allowed call is answered by a
//! local responder.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmi::{Caller, Config, Engine, Extern, Linker, Module, Store};

use crate::manifest::Permission;

/// Fuel per millisecond of declared CPU time. `wasmi` charges about one unit per instruction;
/// this is a budget, not a measurement of the machine, so that verdicts are reproducible.
pub const FUEL_PER_MS: u64 = 20_000;
/// Most egress outcomes recorded (the rest are counted).
pub const MAX_EGRESS_RECORDS: usize = 100;
/// Most log lines kept.
pub const MAX_LOG_LINES: usize = 50;
/// Largest buffer a host call reads from or writes to the module.
pub const MAX_IO: usize = 64 * 1024;
/// Most key-value entries a run may hold.
pub const MAX_KV: usize = 1_000;

const OUT_OF_FUEL: &str = "out of fuel";

/// Limits the server puts on every run, whatever the manifest asks for.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_memory_bytes: u64,
    pub max_fuel: u64,
    pub max_timeout: Duration,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_memory_bytes: 512 * 1024 * 1024,
            max_fuel: 2_000 * FUEL_PER_MS,
            max_timeout: Duration::from_secs(10),
        }
    }
}

/// The tenant's egress rules: host patterns (`api.example.com`, `*.example.com`, `*`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EgressRules {
    pub allow: Vec<String>,
}

impl EgressRules {
    /// Every host the plugin declared is allowed.
    pub fn open() -> Self {
        EgressRules {
            allow: vec!["*".into()],
        }
    }

    fn allows(&self, host: &str) -> bool {
        self.allow.iter().any(|p| host_matches(p, host))
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

/// One outbound request and what the connector decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Egress {
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    pub reason: String,
}

/// The zero-trust connector: decides each outbound request on its own.
#[derive(Debug, Clone)]
pub struct Connector {
    declared: Vec<Permission>,
    rules: EgressRules,
    pub outcomes: Vec<Egress>,
    pub dropped: u64,
}

impl Connector {
    pub fn new(declared: &[Permission], rules: EgressRules) -> Self {
        Connector {
            declared: declared
                .iter()
                .filter(|p| matches!(p, Permission::Net { .. }))
                .cloned()
                .collect(),
            rules,
            outcomes: Vec::new(),
            dropped: 0,
        }
    }

    /// Decides one request; returns the outcome (also recorded).
    pub fn decide(&mut self, raw_url: &str) -> Egress {
        let outcome = self.judge(raw_url);
        if self.outcomes.len() < MAX_EGRESS_RECORDS {
            self.outcomes.push(outcome.clone());
        } else {
            self.dropped += 1;
        }
        outcome
    }

    fn judge(&self, raw_url: &str) -> Egress {
        let deny = |host: String, port: u16, reason: String| Egress {
            host,
            port,
            allowed: false,
            reason,
        };
        let url = match url::Url::parse(raw_url) {
            Ok(u) => u,
            Err(e) => {
                return deny(
                    String::new(),
                    0,
                    format!("`{}` is not a URL ({e})", clip(raw_url)),
                );
            }
        };
        if !matches!(url.scheme(), "http" | "https") {
            return deny(
                String::new(),
                0,
                format!("scheme `{}` is not http or https", clip(url.scheme())),
            );
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return deny(String::new(), 0, "the URL has no host".into());
        };
        let port = url.port_or_known_default().unwrap_or(0);
        if !url.username().is_empty() || url.password().is_some() {
            return deny(host, port, "credentials in URLs are not allowed".into());
        }
        let declared = self.declared.iter().any(|p| match p {
            Permission::Net { host: h, port: p } => {
                host_matches(h, &host) && p.is_none_or(|p| p == port)
            }
            _ => false,
        });
        if !declared {
            return deny(
                host.clone(),
                port,
                format!("no `net:{host}` permission is declared in plugin.toml"),
            );
        }
        if !self.rules.allows(&host) {
            return deny(
                host.clone(),
                port,
                format!("the tenant's egress rules do not allow `{host}`"),
            );
        }
        Egress {
            host: host.clone(),
            port,
            allowed: true,
            reason: format!("declared `net:{host}` and allowed by the tenant's egress rules"),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// What the run showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunFacts {
    /// Whether the entry function was called.
    pub ran: bool,
    /// The export that was called (`run` or `_start`).
    pub entry: String,
    pub fuel_limit: u64,
    pub fuel_used: u64,
    pub memory_limit_bytes: u64,
    pub peak_memory_bytes: u64,
    pub out_of_fuel: bool,
    pub memory_exceeded: bool,
    pub timed_out: bool,
    /// The run ended in a trap (any cause, fuel and memory included).
    pub trapped: bool,
    /// What stopped it, or why it could not run.
    pub trap: String,
    pub duration_ms: u64,
    pub egress: Vec<Egress>,
    pub egress_dropped: u64,
    pub log: Vec<String>,
}

struct Limiter {
    max: usize,
    peak: usize,
    exceeded: bool,
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired > self.max {
            self.exceeded = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
    fn memories(&self) -> usize {
        1
    }
}

struct Host {
    limiter: Limiter,
    connector: Connector,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    log: Vec<String>,
    started: Instant,
    timeout: Duration,
    timed_out: bool,
    /// Deterministic clock and random source: analysis runs give the same facts every time.
    ticks: i64,
    seed: u64,
}

#[derive(Debug)]
struct HostStop(&'static str);

impl std::fmt::Display for HostStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl wasmi::errors::HostError for HostStop {}

fn check_time(caller: &mut Caller<'_, Host>) -> Result<(), wasmi::Error> {
    let h = caller.data_mut();
    if h.started.elapsed() > h.timeout {
        h.timed_out = true;
        return Err(wasmi::Error::host(HostStop(
            "the wall-clock timeout passed",
        )));
    }
    Ok(())
}

fn read_mem(caller: &Caller<'_, Host>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.get_export("memory").and_then(Extern::into_memory)?;
    let len = usize::try_from(len).ok().filter(|l| *l <= MAX_IO)?;
    let ptr = usize::try_from(ptr).ok()?;
    let mut buf = vec![0; len];
    memory.read(caller, ptr, &mut buf).ok()?;
    Some(buf)
}

/// Writes `data` (cut to `cap`) at `ptr`; returns the bytes written or -1.
fn write_mem(caller: &mut Caller<'_, Host>, ptr: i32, cap: i32, data: &[u8]) -> i32 {
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return -1;
    };
    let (Ok(ptr), Ok(cap)) = (usize::try_from(ptr), usize::try_from(cap)) else {
        return -1;
    };
    let n = data.len().min(cap).min(MAX_IO);
    match memory.write(caller, ptr, &data[..n]) {
        Ok(()) => n as i32,
        Err(_) => -1,
    }
}

fn linker(engine: &Engine) -> Result<Linker<Host>, wasmi::Error> {
    let mut l = Linker::<Host>::new(engine);
    l.func_wrap(
        "stellar",
        "log",
        |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
            check_time(&mut c)?;
            if let Some(bytes) = read_mem(&c, ptr, len.min(1024)) {
                let h = c.data_mut();
                if h.log.len() < MAX_LOG_LINES {
                    h.log.push(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
            Ok(())
        },
    )?;
    l.func_wrap(
        "stellar",
        "clock_now_ms",
        |mut c: Caller<'_, Host>| -> Result<i64, wasmi::Error> {
            check_time(&mut c)?;
            let h = c.data_mut();
            h.ticks += 1;
            // A fixed epoch (2026-01-01) plus one millisecond per call.
            Ok(1_767_225_600_000 + h.ticks)
        },
    )?;
    l.func_wrap(
        "stellar",
        "random_u64",
        |mut c: Caller<'_, Host>| -> Result<i64, wasmi::Error> {
            check_time(&mut c)?;
            let h = c.data_mut();
            // xorshift64*: deterministic, so analysis runs are reproducible.
            h.seed ^= h.seed >> 12;
            h.seed ^= h.seed << 25;
            h.seed ^= h.seed >> 27;
            Ok(h.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) as i64)
        },
    )?;
    l.func_wrap(
        "stellar",
        "kv_get",
        |mut c: Caller<'_, Host>,
         kp: i32,
         kl: i32,
         op: i32,
         oc: i32|
         -> Result<i32, wasmi::Error> {
            check_time(&mut c)?;
            let Some(key) = read_mem(&c, kp, kl) else {
                return Ok(-1);
            };
            let value = c.data().kv.get(&key).cloned();
            Ok(match value {
                Some(v) => write_mem(&mut c, op, oc, &v),
                None => -2,
            })
        },
    )?;
    l.func_wrap(
        "stellar",
        "kv_set",
        |mut c: Caller<'_, Host>,
         kp: i32,
         kl: i32,
         vp: i32,
         vl: i32|
         -> Result<i32, wasmi::Error> {
            check_time(&mut c)?;
            let (Some(key), Some(val)) = (read_mem(&c, kp, kl), read_mem(&c, vp, vl)) else {
                return Ok(-1);
            };
            let h = c.data_mut();
            if h.kv.len() >= MAX_KV && !h.kv.contains_key(&key) {
                return Ok(-3);
            }
            h.kv.insert(key, val);
            Ok(0)
        },
    )?;
    l.func_wrap(
        "stellar",
        "http_get",
        |mut c: Caller<'_, Host>,
         up: i32,
         ul: i32,
         op: i32,
         oc: i32|
         -> Result<i32, wasmi::Error> {
            check_time(&mut c)?;
            let Some(url) = read_mem(&c, up, ul.min(2048)) else {
                return Ok(-1);
            };
            let url = String::from_utf8_lossy(&url).into_owned();
            let outcome = c.data_mut().connector.decide(&url);
            if !outcome.allowed {
                // Denied: the plugin sees 403 Forbidden, like a real egress proxy answers.
                return Ok(-403);
            }
            // The local responder: nothing leaves the machine during analysis.
            let body = br#"{"stellar":"sandbox responder","status":200}"#;
            Ok(write_mem(&mut c, op, oc, body))
        },
    )?;
    // The sandbox has no environment and no files: every variable and path is absent.
    for name in ["env_get", "fs_read"] {
        l.func_wrap(
            "stellar",
            name,
            |mut c: Caller<'_, Host>,
             _p: i32,
             _l: i32,
             _op: i32,
             _oc: i32|
             -> Result<i32, wasmi::Error> {
                check_time(&mut c)?;
                Ok(-2)
            },
        )?;
    }
    Ok(l)
}

/// Runs the module once. Never panics; every failure is a fact.
pub fn run(
    wasm: &[u8],
    memory_mb: u32,
    cpu_millis: u32,
    timeout_ms: u32,
    declared: &[Permission],
    rules: EgressRules,
    caps: Caps,
) -> RunFacts {
    let started = Instant::now();
    let fuel = (u64::from(cpu_millis) * FUEL_PER_MS).min(caps.max_fuel);
    let memory_limit = (u64::from(memory_mb) * 1024 * 1024).min(caps.max_memory_bytes);
    let timeout = Duration::from_millis(u64::from(timeout_ms)).min(caps.max_timeout);
    let mut facts = RunFacts {
        fuel_limit: fuel,
        memory_limit_bytes: memory_limit,
        ..RunFacts::default()
    };
    let mut config = Config::default();
    config.consume_fuel(true);
    let engine = Engine::new(&config);
    let host = Host {
        limiter: Limiter {
            max: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            peak: 0,
            exceeded: false,
        },
        connector: Connector::new(declared, rules),
        kv: BTreeMap::new(),
        log: Vec::new(),
        started,
        timeout,
        timed_out: false,
        ticks: 0,
        seed: 0x9E37_79B9_7F4A_7C15,
    };
    let mut store = Store::new(&engine, host);
    store.limiter(|h| &mut h.limiter);
    if store.set_fuel(fuel).is_err() {
        facts.trap = "fuel metering is unavailable".into();
        return facts;
    }
    let outcome = (|| -> Result<(), String> {
        let module =
            Module::new(&engine, wasm).map_err(|e| format!("the module does not load: {e}"))?;
        let linker = linker(&engine).map_err(|e| e.to_string())?;
        let instance = linker
            .instantiate_and_start(&mut store, &module)
            .map_err(|e| format!("instantiation failed: {e}"))?;
        let (name, func) = ["run", "_start"]
            .iter()
            .find_map(|n| instance.get_func(&store, n).map(|f| (*n, f)))
            .ok_or_else(|| "the module exports no `run` or `_start` function".to_owned())?;
        facts.entry = name.to_owned();
        let ty = func.ty(&store);
        if !ty.params().is_empty() {
            return Err(format!("`{name}` must take no parameters"));
        }
        let mut results = vec![wasmi::Val::I32(0); ty.results().len()];
        facts.ran = true;
        func.call(&mut store, &[], &mut results).map_err(|e| {
            if e.as_trap_code() == Some(wasmi::TrapCode::OutOfFuel) {
                OUT_OF_FUEL.to_owned()
            } else {
                e.to_string()
            }
        })
    })();
    let remaining = store.get_fuel().unwrap_or(0);
    facts.fuel_used = fuel.saturating_sub(remaining);
    let host = store.data();
    facts.peak_memory_bytes = host.limiter.peak as u64;
    facts.memory_exceeded = host.limiter.exceeded;
    facts.timed_out = host.timed_out || started.elapsed() > timeout;
    facts.egress = host.connector.outcomes.clone();
    facts.egress_dropped = host.connector.dropped;
    facts.log = host.log.clone();
    facts.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(e) = outcome {
        facts.trapped = facts.ran;
        facts.out_of_fuel = facts.ran && (remaining == 0 || e == OUT_OF_FUEL);
        facts.trap = if facts.out_of_fuel {
            format!("the fuel budget of {fuel} units (from resources.cpu_millis) ran out")
        } else if facts.memory_exceeded {
            format!(
                "the module tried to grow its memory past the limit of {} MiB",
                memory_limit / (1024 * 1024)
            )
        } else {
            e
        };
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(src: &str) -> Vec<u8> {
        wat::parse_str(src).unwrap()
    }

    fn go(src: &str, declared: &[Permission]) -> RunFacts {
        run(
            &wasm(src),
            16,
            100,
            2000,
            declared,
            EgressRules::open(),
            Caps::default(),
        )
    }

    #[test]
    fn a_clean_module_runs() {
        let f = go(
            r#"(module (import "stellar" "log" (func $log (param i32 i32)))
                 (memory (export "memory") 1) (data (i32.const 0) "hello")
                 (func (export "run") (call $log (i32.const 0) (i32.const 5))))"#,
            &[],
        );
        assert!(f.ran && !f.trapped, "{f:?}");
        assert_eq!(f.log, vec!["hello"]);
        assert!(f.fuel_used > 0);
    }

    #[test]
    fn an_endless_loop_runs_out_of_fuel() {
        let f = go(r#"(module (func (export "run") (loop (br 0))))"#, &[]);
        assert!(f.out_of_fuel && f.trapped, "{f:?}");
    }

    #[test]
    fn memory_growth_past_the_limit_is_caught() {
        let f = go(
            r#"(module (memory 1) (func (export "run")
                 (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
                 unreachable))"#,
            &[],
        );
        assert!(f.memory_exceeded && f.trapped, "{f:?}");
        assert!(f.peak_memory_bytes <= 16 * 1024 * 1024);
    }

    #[test]
    fn the_connector_decides_each_call() {
        let src = r#"(module (import "stellar" "http_get" (func $get (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "https://api.example.com/v1")
             (data (i32.const 100) "https://evil.example.net/x")
             (func (export "run")
               (drop (call $get (i32.const 0) (i32.const 26) (i32.const 1000) (i32.const 100)))
               (drop (call $get (i32.const 100) (i32.const 26) (i32.const 1000) (i32.const 100)))))"#;
        let declared = [Permission::parse("net:api.example.com").unwrap()];
        let f = go(src, &declared);
        assert_eq!(f.egress.len(), 2, "{f:?}");
        assert!(f.egress[0].allowed);
        assert!(!f.egress[1].allowed);
        assert!(f.egress[1].reason.contains("no `net:evil.example.net`"));
        let closed = run(
            &wasm(src),
            16,
            10,
            2000,
            &declared,
            EgressRules {
                allow: vec!["*.example.org".into()],
            },
            Caps::default(),
        );
        assert!(closed.egress.iter().all(|e| !e.allowed));
        assert!(closed.egress[0].reason.contains("tenant"));
    }
}
