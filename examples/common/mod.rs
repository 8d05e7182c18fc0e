//! Flag parsing, JSON output and provenance for the measurement examples (`sae`, `bench`),
//! whose outputs results files cite; the command line proper is the `drsae` binary
//! (`cli/`). Not part of the library.
#![allow(dead_code)]

use std::collections::HashMap;

/// Parsed `--flag value` / `--switch` arguments plus positionals.
pub struct Args {
    map: HashMap<String, String>,
    pub positional: Vec<String>,
    used: std::cell::RefCell<Vec<String>>,
}

/// Prints one human line on stderr and exits with status 2.
pub fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

impl Args {
    pub fn parse(switches: &[&str]) -> Args {
        let mut map = HashMap::new();
        let mut positional = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    map.insert(k.to_string(), v.to_string());
                } else if switches.contains(&name) {
                    map.insert(name.to_string(), "true".to_string());
                } else {
                    match it.next() {
                        Some(v) => {
                            map.insert(name.to_string(), v);
                        }
                        None => die(format!("--{name} needs a value")),
                    }
                }
            } else {
                positional.push(a);
            }
        }
        Args {
            map,
            positional,
            used: Default::default(),
        }
    }

    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.opt(name).unwrap_or(default)
    }

    /// The value of `--name` parsed as `T`; exits (status 2, one line) on a value that does
    /// not parse and on a value out of the range every example shares:
    /// - a real (`f32`, `f64`) must be finite (`1e39` is infinite as an `f32`) and ≥ 0 (no
    ///   example has a negative real setting), and `> 0` for `--lr`, `--lr-unsup` and
    ///   `--time-budget`;
    /// - a size or count (`usize`) must be at most [`MAX_SIZE`] (a larger one is no real
    ///   setting, and products of such sizes overflow or ask for the impossible).
    ///
    pub fn opt<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.used.borrow_mut().push(name.to_string());
        self.map.get(name).map(|v| {
            let t = std::any::type_name::<T>();
            if t == "f32" || t == "f64" {
                let x = if t == "f32" {
                    v.parse::<f32>().ok().map(f64::from)
                } else {
                    v.parse::<f64>().ok()
                };
                let Some(x) = x else {
                    die(format!("--{name}: cannot parse `{v}`"));
                };
                if !x.is_finite() {
                    die(format!("--{name}: `{v}` is not a finite number"));
                }
                let positive = matches!(name, "lr" | "lr-unsup" | "time-budget");
                if positive && x <= 0.0 {
                    die(format!("--{name}: `{v}` must be > 0"));
                }
                if x < 0.0 {
                    die(format!("--{name}: `{v}` must be ≥ 0"));
                }
            }
            if t == "usize" {
                match v.parse::<usize>() {
                    Ok(n) if n > MAX_SIZE => die(format!(
                        "--{name}: {n} is out of range (at most {MAX_SIZE})"
                    )),
                    _ => {}
                }
            }
            v.parse()
                .unwrap_or_else(|_| die(format!("--{name}: cannot parse `{v}`")))
        })
    }

    pub fn str(&self, name: &str) -> Option<String> {
        self.opt::<String>(name)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.used.borrow_mut().push(name.to_string());
        self.map.contains_key(name)
    }

    /// Rejects flags nobody asked for and any positional argument (call after reading
    /// every option).
    pub fn finish(&self) {
        self.finish_positional(0)
    }

    /// [`Args::finish`] for a command that takes up to `max` positional arguments.
    pub fn finish_positional(&self, max: usize) {
        if let Some(extra) = self.positional.get(max) {
            die(format!("unexpected argument `{extra}`"));
        }
        let used = self.used.borrow();
        for k in self.map.keys() {
            if !used.contains(k) {
                die(format!("unknown option --{k}"));
            }
        }
    }
}

/// The largest value of any size or count flag (`usize`): 10⁸.
pub const MAX_SIZE: usize = 100_000_000;

/// The largest `--threads` accepted (each GEMM may start that many threads).
pub const MAX_THREADS: usize = 256;

/// Sets the GEMM thread count from `--threads` (default: all cores) and returns it.
pub fn threads(args: &Args) -> usize {
    let default = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t: usize = args.get("threads", default);
    if !(1..=MAX_THREADS).contains(&t) {
        die(format!("--threads must be in 1..={MAX_THREADS}"));
    }
    drsae::linalg::set_gemm_threads(t)
}

/// Minimal JSON object writer for the last stdout line.
pub struct Json(Vec<String>);

impl Json {
    pub fn new() -> Json {
        Json(Vec::new())
    }
    pub fn num(mut self, k: &str, v: f64) -> Json {
        let s = if v.is_finite() {
            format!("{v}")
        } else {
            "null".to_string()
        };
        self.0.push(format!("\"{k}\":{s}"));
        self
    }
    pub fn str(mut self, k: &str, v: &str) -> Json {
        self.0.push(format!(
            "\"{k}\":\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        ));
        self
    }
    /// Every `(key, value)` pair as a string field.
    pub fn strs(mut self, fields: &[(&str, String)]) -> Json {
        for (k, v) in fields {
            self = self.str(k, v);
        }
        self
    }
    /// A nested object of string fields.
    pub fn object(mut self, k: &str, fields: &[(String, String)]) -> Json {
        let inner = fields.iter().fold(Json::new(), |j, (k, v)| j.str(k, v));
        self.0.push(format!("\"{k}\":{{{}}}", inner.0.join(", ")));
        self
    }
    pub fn print(self) {
        println!("{{{}}}", self.0.join(", "));
    }
}

/// Where a result came from: crate version, the git commit of the build
/// ([`drsae::BUILD_COMMIT`]), the SIMD level the kernels use, the CPU model and the GEMM
/// thread count.
pub fn provenance() -> Vec<(&'static str, String)> {
    vec![
        ("crate_version", env!("CARGO_PKG_VERSION").to_string()),
        ("git_commit", drsae::BUILD_COMMIT.to_string()),
        ("simd", drsae::simd_width().to_string()),
        ("cpu", drsae::simd::cpu_model()),
        ("threads", drsae::linalg::gemm_threads().to_string()),
    ]
}
