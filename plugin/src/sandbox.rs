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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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
        if let Some(kind) = internal_host(&host) {
            return deny(
                host.clone(),
                port,
                format!(
                    "`{host}` is a {kind} address: plugins never reach it, whatever the manifest or the tenant's rules say"
                ),
            );
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

/// What kind of internal address `host` is, if it is one: loopback, private, link-local (which
/// includes the cloud metadata service at 169.254.169.254), unique-local, unspecified, or a
/// name that means one of these. Such targets are never allowed.
pub fn internal_host(host: &str) -> Option<&'static str> {
    use std::net::{IpAddr, Ipv4Addr};
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("loopback");
    }
    if host == "metadata.google.internal" || host == "metadata" {
        return Some("cloud metadata");
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = bare.parse().ok()?;
    let v4 = |a: Ipv4Addr| -> Option<&'static str> {
        let [o1, o2, ..] = a.octets();
        if a.is_loopback() {
            Some("loopback")
        } else if a.is_link_local() {
            Some("link-local (cloud metadata)")
        } else if o1 == 10 || (o1 == 172 && (16..=31).contains(&o2)) || (o1 == 192 && o2 == 168) {
            Some("private")
        } else if a.is_unspecified() || o1 == 0 {
            Some("unspecified")
        } else {
            None
        }
    };
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            if let Some(mapped) = a.to_ipv4_mapped() {
                return v4(mapped);
            }
            let first = a.segments()[0];
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if first & 0xfe00 == 0xfc00 {
                Some("unique-local (private)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
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
    /// Bytes held by the key-value store: they count toward the memory limit too.
    kv_bytes: usize,
}

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi_core::LimiterError> {
        if desired.saturating_add(self.kv_bytes) > self.max {
            self.exceeded = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired.saturating_add(self.kv_bytes));
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
    /// The clock and the random source are deterministic per bundle (the same bundle gives
    /// the same facts on every run) and look like a real host's: the clock starts at a date
    /// derived from the bundle and moves with the work done; the random numbers are seeded by
    /// the bundle.
    clock_base_ms: i64,
    clock_last_ms: i64,
    fuel_limit: u64,
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

/// A host call that must stop the run: the module broke the host interface.
fn trap(message: &'static str) -> wasmi::Error {
    wasmi::Error::host(HostStop(message))
}

const OUT_OF_BOUNDS: &str = "a host call was given a pointer or length outside the module's memory";

/// Reads `len` bytes at `ptr` (at most `cap` of them). A range outside the module's memory
/// traps: a host function never silently ignores a bad pointer.
fn read_mem(
    caller: &Caller<'_, Host>,
    ptr: i32,
    len: i32,
    cap: usize,
) -> Result<Vec<u8>, wasmi::Error> {
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| trap("the module calls the host but exports no `memory`"))?;
    let size = memory.data_size(caller);
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if ptr.checked_add(len).is_none_or(|end| end > size) {
        return Err(trap(OUT_OF_BOUNDS));
    }
    let mut buf = vec![0; len.min(cap)];
    memory
        .read(caller, ptr, &mut buf)
        .map_err(|_| trap(OUT_OF_BOUNDS))?;
    Ok(buf)
}

/// Writes `data` (cut to `cap` and to the host's buffer limit) at `ptr`; returns the bytes
/// written. A range outside the module's memory traps.
fn write_mem(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    cap: i32,
    data: &[u8],
) -> Result<i32, wasmi::Error> {
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| trap("the module calls the host but exports no `memory`"))?;
    let size = memory.data_size(&*caller);
    let (ptr, cap) = (ptr as u32 as usize, cap as u32 as usize);
    if ptr.checked_add(cap).is_none_or(|end| end > size) {
        return Err(trap(OUT_OF_BOUNDS));
    }
    let n = data.len().min(cap).min(MAX_IO);
    memory
        .write(caller, ptr, &data[..n])
        .map_err(|_| trap(OUT_OF_BOUNDS))?;
    Ok(n as i32)
}

/// The body the local responder answers allowed calls with: what a typical JSON API says,
/// nothing that names the sandbox.
const RESPONDER_BODY: &[u8] = br#"{"ok":true}"#;

fn linker(engine: &Engine) -> Result<Linker<Host>, wasmi::Error> {
    let mut l = Linker::<Host>::new(engine);
    l.func_wrap(
        "stellar",
        "log",
        |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
            check_time(&mut c)?;
            let bytes = read_mem(&c, ptr, len, 1024)?;
            let h = c.data_mut();
            if h.log.len() < MAX_LOG_LINES {
                h.log.push(String::from_utf8_lossy(&bytes).into_owned());
            }
            Ok(())
        },
    )?;
    l.func_wrap(
        "stellar",
        "clock_now_ms",
        |mut c: Caller<'_, Host>| -> Result<i64, wasmi::Error> {
            check_time(&mut c)?;
            let used = c
                .get_fuel()
                .map_or(0, |left| c.data().fuel_limit.saturating_sub(left));
            let h = c.data_mut();
            // Time moves with the work done, plus a little jitter, and never goes back.
            let jitter = (next_random(&mut h.seed) % 3) as i64;
            let now = h.clock_base_ms + (used / FUEL_PER_MS) as i64 + jitter;
            h.clock_last_ms = h.clock_last_ms.max(now);
            Ok(h.clock_last_ms)
        },
    )?;
    l.func_wrap(
        "stellar",
        "random_u64",
        |mut c: Caller<'_, Host>| -> Result<i64, wasmi::Error> {
            check_time(&mut c)?;
            Ok(next_random(&mut c.data_mut().seed) as i64)
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
            if kl as u32 as usize > MAX_IO {
                return Ok(-1);
            }
            let key = read_mem(&c, kp, kl, MAX_IO)?;
            let value = c.data().kv.get(&key).cloned();
            match value {
                Some(v) => write_mem(&mut c, op, oc, &v),
                None => Ok(-2),
            }
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
            if kl as u32 as usize > MAX_IO || vl as u32 as usize > MAX_IO {
                return Ok(-1);
            }
            let key = read_mem(&c, kp, kl, MAX_IO)?;
            let val = read_mem(&c, vp, vl, MAX_IO)?;
            let memory = c
                .get_export("memory")
                .and_then(Extern::into_memory)
                .map_or(0, |m| m.data_size(&c));
            let h = c.data_mut();
            if h.kv.len() >= MAX_KV && !h.kv.contains_key(&key) {
                return Ok(-3);
            }
            // The store's bytes count toward the memory limit, as the module's own would.
            let old = h.kv.get(&key).map_or(0, |v| v.len() + key.len());
            let kv_bytes = h.limiter.kv_bytes - old + key.len() + val.len();
            if memory.saturating_add(kv_bytes) > h.limiter.max {
                h.limiter.exceeded = true;
                return Err(trap("the key-value store would pass the memory limit"));
            }
            h.limiter.kv_bytes = kv_bytes;
            h.limiter.peak = h.limiter.peak.max(memory + kv_bytes);
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
            let url = read_mem(&c, up, ul, 2048)?;
            let url = String::from_utf8_lossy(&url).into_owned();
            let outcome = c.data_mut().connector.decide(&url);
            if !outcome.allowed {
                // Denied: the plugin sees 403 Forbidden, like a real egress proxy answers.
                return Ok(-403);
            }
            // The local responder: nothing leaves the machine during analysis.
            write_mem(&mut c, op, oc, RESPONDER_BODY)
        },
    )?;
    // The sandbox has no environment and no files: every variable and path is absent.
    for name in ["env_get", "fs_read"] {
        l.func_wrap(
            "stellar",
            name,
            |mut c: Caller<'_, Host>,
             p: i32,
             l: i32,
             _op: i32,
             _oc: i32|
             -> Result<i32, wasmi::Error> {
                check_time(&mut c)?;
                read_mem(&c, p, l, 1024)?;
                Ok(-2)
            },
        )?;
    }
    Ok(l)
}

/// One run: the module, what its manifest asks for, and what the server allows.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub wasm: &'a [u8],
    pub memory_mb: u32,
    pub cpu_millis: u32,
    pub timeout_ms: u32,
    /// The manifest's permissions (the connector allows only declared `net:` hosts).
    pub declared: &'a [Permission],
    pub rules: EgressRules,
    pub caps: Caps,
    /// The bundle's digest: the seed of the clock and the random numbers the module sees.
    pub bundle_sha256: &'a str,
}

/// Runs the module once. Never panics; every failure is a fact.
pub fn run(spec: Run<'_>) -> RunFacts {
    let Run {
        wasm,
        memory_mb,
        cpu_millis,
        timeout_ms,
        declared,
        rules,
        caps,
        bundle_sha256,
    } = spec;
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
            kv_bytes: 0,
        },
        connector: Connector::new(declared, rules),
        kv: BTreeMap::new(),
        log: Vec::new(),
        started,
        timeout,
        timed_out: false,
        clock_base_ms: clock_base(bundle_sha256),
        clock_last_ms: 0,
        fuel_limit: fuel,
        seed: seed_of(bundle_sha256),
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

/// A seed from the bundle's digest (never zero: xorshift would stay at zero).
fn seed_of(bundle_sha256: &str) -> u64 {
    let mut seed = 0xCBF2_9CE4_8422_2325u64;
    for b in bundle_sha256.bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    seed | 1
}

/// A start time from the bundle's digest: a moment in 2026, to the millisecond.
fn clock_base(bundle_sha256: &str) -> i64 {
    const START_2026: i64 = 1_767_225_600_000;
    const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;
    START_2026 + (seed_of(bundle_sha256).rotate_left(17) % YEAR_MS) as i64
}

/// xorshift64*: deterministic for a seed.
fn next_random(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(src: &str) -> Vec<u8> {
        wat::parse_str(src).unwrap()
    }

    fn spec<'a>(wasm: &'a [u8], memory_mb: u32, declared: &'a [Permission]) -> Run<'a> {
        Run {
            wasm,
            memory_mb,
            cpu_millis: 100,
            timeout_ms: 2000,
            declared,
            rules: EgressRules::open(),
            caps: Caps::default(),
            bundle_sha256: "c0ffee",
        }
    }

    fn go(src: &str, declared: &[Permission]) -> RunFacts {
        run(spec(&wasm(src), 16, declared))
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
        let module = wasm(src);
        let closed = run(Run {
            cpu_millis: 10,
            rules: EgressRules {
                allow: vec!["*.example.org".into()],
            },
            ..spec(&module, 16, &declared)
        });
        assert!(closed.egress.iter().all(|e| !e.allowed));
        assert!(closed.egress[0].reason.contains("tenant"));
    }

    #[test]
    fn internal_addresses_are_never_reached() {
        for (host, internal) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.20.0.1", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("[::1]", true),
            ("[fd00::1]", true),
            ("[fe80::1]", true),
            ("[::ffff:127.0.0.1]", true),
            ("localhost", true),
            ("api.example.com", false),
            ("93.184.216.34", false),
        ] {
            assert_eq!(internal_host(host).is_some(), internal, "{host}");
        }
        let src = r#"(module (import "stellar" "http_get" (func $get (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 0) "http://169.254.169.254/latest")
             (func (export "run")
               (drop (call $get (i32.const 0) (i32.const 30) (i32.const 1000) (i32.const 100)))))"#;
        let declared = [Permission::parse("net:169.254.169.254").unwrap()];
        let f = go(src, &declared);
        assert!(!f.egress[0].allowed, "{f:?}");
        assert!(f.egress[0].reason.contains("link-local"), "{f:?}");
    }

    #[test]
    fn a_pointer_outside_memory_traps() {
        for call in [
            "(call $log (i32.const 65530) (i32.const 100))",
            "(call $log (i32.const -1) (i32.const 1))",
            "(call $log (i32.const 0) (i32.const -5))",
        ] {
            let f = go(
                &format!(
                    r#"(module (import "stellar" "log" (func $log (param i32 i32)))
                         (memory (export "memory") 1)
                         (func (export "run") {call}))"#
                ),
                &[],
            );
            assert!(f.trapped, "{call}: {f:?}");
            assert!(
                f.trap.contains("outside the module's memory"),
                "{call}: {f:?}"
            );
        }
    }

    #[test]
    fn the_key_value_store_counts_toward_the_memory_limit() {
        // 1 page of memory (64 KiB) and a 1 MiB limit: 16 values of 64 KiB overflow it.
        let module = wasm(
            r#"(module (import "stellar" "kv_set" (func $set (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 2)
             (func (export "run") (local $i i32)
               (loop
                 (i32.store (i32.const 0) (local.get $i))
                 (drop (call $set (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 65536)))
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if 0 (i32.lt_u (local.get $i) (i32.const 64))))))"#,
        );
        let f = run(spec(&module, 1, &[]));
        assert!(f.memory_exceeded && f.trapped, "{f:?}");
        assert!(f.trap.contains("memory"), "{f:?}");
    }

    #[test]
    fn the_clock_moves_with_the_work_and_starts_where_the_bundle_says() {
        // Traps unless the clock moved across a loop of work.
        let src = r#"(module (import "stellar" "clock_now_ms" (func $now (result i64)))
             (func (export "run") (local $i i32) (local $t0 i64)
               (local.set $t0 (call $now))
               (loop (local.set $i (i32.add (local.get $i) (i32.const 1)))
                     (br_if 0 (i32.lt_u (local.get $i) (i32.const 400000))))
               (if (i64.le_s (call $now) (local.get $t0)) (then unreachable))))"#;
        let f = go(src, &[]);
        assert!(f.ran && !f.trapped, "{f:?}");
        // The same bundle starts at the same moment; another at another; both in 2026.
        assert_eq!(clock_base("c0ffee"), clock_base("c0ffee"));
        assert_ne!(clock_base("c0ffee"), clock_base("beef"));
        for b in ["c0ffee", "beef"] {
            assert!((1_767_225_600_000..1_798_761_600_000).contains(&clock_base(b)));
        }
        assert_ne!(seed_of("c0ffee"), seed_of("beef"));
    }
}
