//! Every cited figure in README.md, BENCHMARKS.md and results/recipe_selection.md is held by
//! the results file it cites.
//!
//! A citation is an HTML comment right after the figure (and its unit), invisible once the
//! Markdown is rendered; BENCHMARKS.md describes the format at its top:
//!
//! ```text
//! 1.07 %<!-- results/mnist8_h400_b50_avg9999_s0.json /test_error -->
//! 136.4<!-- results/bench_kernels.json bench=sgemm_256x784x400 /value -->
//! 8,609<!-- results/train_vs_torch12.json bench=drsae_b10_unsup#2 /value -->
//! 0.094<!-- results/lista/lista.csv dataset=mnist&T=1 /lista -->
//! 1.40 %<!-- results/mnist_h200avg_l018.log "test error {}%" -->
//! 1.10 %<!-- mean(results/a.json /test_error, results/b.json /test_error) -->
//! ```
//!
//! The figure is the number just before the comment (thousands separated by commas); only a
//! unit, `%`, `×`, `*` and spaces may stand between them. It must equal the cited value
//! rounded to the figure's own decimals. `scripts/bench_tables.py` implements the same
//! format and rewrites the figures from their files.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The documents whose figures are checked (relative to the crate root).
const DOCUMENTS: &[&str] = &["README.md", "BENCHMARKS.md", "results/recipe_selection.md"];

/// Functions a citation may apply to its references.
const FUNCTIONS: &[&str] = &["mean", "sd", "min", "max", "ratio"];

/// The most characters allowed between a figure and its citation (its unit).
const MAX_GAP: usize = 16;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One cited figure: where it is, the figure as written, the comment's expression.
#[derive(Debug)]
struct Citation {
    line: usize,
    figure: String,
    expr: String,
}

/// `text` with fenced code blocks and inline code spans blanked (byte for byte): a citation
/// inside code is an example, not a citation.
fn mask_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence = false;
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let blank = |s: &mut String, c: char| s.extend(std::iter::repeat(' ').take(c.len_utf8()));
        if line.trim_start().starts_with("```") || fence {
            if line.trim_start().starts_with("```") {
                fence = !fence;
            }
            line.chars().for_each(|c| blank(&mut out, c));
            continue;
        }
        let mut code = false;
        for c in line.chars() {
            if c == '`' {
                code = !code;
            }
            if code || c == '`' {
                blank(&mut out, c);
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// The citations of a document, in order. A comment is a citation when its text starts with
/// `results/` or with one of [`FUNCTIONS`] and `(`; other comments are left alone, and so is
/// code. A citation without a figure before it is reported with an empty figure.
fn citations(text: &str) -> Vec<Citation> {
    let text = &mask_code(text);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("<!--").map(|i| i + from) {
        let Some(end) = text[start..].find("-->").map(|i| i + start) else {
            break;
        };
        let expr = text[start + 4..end].trim().to_string();
        from = end + 3;
        if !is_citation(&expr) {
            continue;
        }
        let line = text[..start].matches('\n').count() + 1;
        out.push(Citation {
            line,
            figure: figure_before(&text[..start]),
            expr,
        });
    }
    out
}

fn is_citation(expr: &str) -> bool {
    expr.starts_with("results/")
        || FUNCTIONS
            .iter()
            .any(|f| expr.starts_with(f) && expr[f.len()..].trim_start().starts_with('('))
}

/// The number that ends `before`, skipping at most [`MAX_GAP`] characters of unit; empty
/// when there is none.
fn figure_before(before: &str) -> String {
    let chars: Vec<char> = before.chars().collect();
    let mut i = chars.len();
    let mut gap = 0;
    while i > 0 && !chars[i - 1].is_ascii_digit() {
        let c = chars[i - 1];
        if "|<>()\n".contains(c) || gap == MAX_GAP {
            return String::new();
        }
        i -= 1;
        gap += 1;
    }
    let end = i;
    while i > 0 && (chars[i - 1].is_ascii_digit() || chars[i - 1] == '.' || chars[i - 1] == ',') {
        i -= 1;
    }
    while i < end && (chars[i] == '.' || chars[i] == ',') {
        i += 1;
    }
    let mut figure: String = chars[i..end].iter().collect();
    if i > 0 && (chars[i - 1] == '-' || chars[i - 1] == '−') {
        figure.insert(0, '-');
    }
    figure
}

/// A figure as written: its value and its number of decimals.
fn parse_figure(figure: &str) -> Result<(f64, usize), String> {
    let plain = figure.replace(',', "");
    let value = plain
        .parse::<f64>()
        .map_err(|_| format!("no figure before the citation (found {figure:?})"))?;
    let decimals = plain.find('.').map_or(0, |dot| plain.len() - dot - 1);
    Ok((value, decimals))
}

// ---------------------------------------------------------------------------------------
// Expressions

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Word(String),
    Quoted(String),
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '"' => {
                chars.next();
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => quoted.push(c),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
                tokens.push(Token::Quoted(quoted));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "(),\"".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[derive(Debug)]
enum Expr {
    Ref(Ref),
    Call(String, Vec<Expr>),
}

/// A reference to one value of one file.
#[derive(Debug, Default)]
struct Ref {
    path: String,
    /// `L<n>`, `last`, or `key=value[&key=value…][#n]`.
    selector: Option<String>,
    /// A JSON pointer (`/a/b`), or for CSV rows `/column`.
    pointer: Option<String>,
    /// A text pattern: `{}` marks the number; without `{}` the text must hold the figure.
    pattern: Option<String>,
}

fn parse_expr(s: &str) -> Result<Expr, String> {
    let tokens = tokenize(s)?;
    let mut pos = 0;
    let expr = parse_at(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(format!("unexpected {:?} in {s:?}", tokens[pos]));
    }
    Ok(expr)
}

fn parse_at(tokens: &[Token], pos: &mut usize) -> Result<Expr, String> {
    let Some(Token::Word(first)) = tokens.get(*pos) else {
        return Err(format!(
            "expected a path or a function at {:?}",
            tokens.get(*pos)
        ));
    };
    *pos += 1;
    if FUNCTIONS.contains(&first.as_str()) && tokens.get(*pos) == Some(&Token::Open) {
        *pos += 1;
        let mut args = vec![parse_at(tokens, pos)?];
        loop {
            match tokens.get(*pos) {
                Some(Token::Comma) => {
                    *pos += 1;
                    args.push(parse_at(tokens, pos)?);
                }
                Some(Token::Close) => {
                    *pos += 1;
                    break;
                }
                other => return Err(format!("expected , or ) in {first}(…), found {other:?}")),
            }
        }
        return Ok(Expr::Call(first.clone(), args));
    }
    if !first.starts_with("results/") || first.contains("..") {
        return Err(format!("a cited file must be under results/: {first:?}"));
    }
    let mut r = Ref {
        path: first.clone(),
        ..Ref::default()
    };
    while let Some(token) = tokens.get(*pos) {
        match token {
            Token::Word(w) if w.starts_with('/') && r.pointer.is_none() => {
                r.pointer = Some(w.clone())
            }
            Token::Word(w) if r.selector.is_none() && r.pointer.is_none() => {
                r.selector = Some(w.clone())
            }
            Token::Quoted(q) if r.pattern.is_none() => r.pattern = Some(q.clone()),
            Token::Comma | Token::Close => break,
            other => return Err(format!("unexpected {other:?} after {}", r.path)),
        }
        *pos += 1;
    }
    if r.pattern.is_some() && (r.selector.is_some() || r.pointer.is_some()) {
        return Err(format!(
            "{}: a text pattern takes no selector or pointer",
            r.path
        ));
    }
    Ok(Expr::Ref(r))
}

// ---------------------------------------------------------------------------------------
// Files and values

/// What a citation evaluates to.
#[derive(Debug)]
enum Cited {
    Number(f64),
    /// A text pattern without `{}` that the file holds: the figure must be in it.
    Text(String),
}

struct Files {
    root: PathBuf,
    cache: HashMap<String, String>,
}

impl Files {
    fn new(root: &Path) -> Self {
        Files {
            root: root.to_path_buf(),
            cache: HashMap::new(),
        }
    }

    fn text(&mut self, path: &str) -> Result<String, String> {
        if let Some(t) = self.cache.get(path) {
            return Ok(t.clone());
        }
        let full = self.root.join(path);
        let t =
            std::fs::read_to_string(&full).map_err(|e| format!("{path}: cannot be read ({e})"))?;
        self.cache.insert(path.to_string(), t.clone());
        Ok(t)
    }
}

fn eval(expr: &Expr, files: &mut Files) -> Result<Cited, String> {
    match expr {
        Expr::Ref(r) => eval_ref(r, files),
        Expr::Call(name, args) => {
            let mut xs = Vec::new();
            for a in args {
                match eval(a, files)? {
                    Cited::Number(x) => xs.push(x),
                    Cited::Text(t) => return Err(format!("{name}() of a text match {t:?}")),
                }
            }
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let value = match name.as_str() {
                "mean" => mean,
                "sd" if xs.len() >= 2 => {
                    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                }
                "sd" => return Err("sd() needs at least two values".into()),
                "min" => xs.iter().cloned().fold(f64::INFINITY, f64::min),
                "max" => xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                "ratio" if xs.len() == 2 => xs[0] / xs[1],
                "ratio" => return Err("ratio() takes two values".into()),
                _ => unreachable!("parse_at accepts only FUNCTIONS"),
            };
            Ok(Cited::Number(value))
        }
    }
}

fn eval_ref(r: &Ref, files: &mut Files) -> Result<Cited, String> {
    let text = files.text(&r.path)?;
    if let Some(pattern) = &r.pattern {
        return match_pattern(&text, pattern)
            .ok_or_else(|| format!("{}: does not contain {pattern:?}", r.path));
    }
    let record = select(&r.path, &text, r.selector.as_deref())?;
    let value = match &r.pointer {
        Some(p) => record
            .pointer(p)
            .ok_or_else(|| format!("{}: no {p} in the selected record", r.path))?,
        None => &record,
    };
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    number
        .map(Cited::Number)
        .ok_or_else(|| format!("{}: {value} is not a number", r.path))
}

/// The record a selector picks: a whole JSON file, a JSON line, or a CSV row (as an object
/// of strings keyed by the header).
fn select(path: &str, text: &str, selector: Option<&str>) -> Result<Value, String> {
    let csv = path.ends_with(".csv");
    let Some(selector) = selector else {
        if csv {
            return Err(format!("{path}: a CSV citation needs a row selector"));
        }
        return serde_json::from_str(text).map_err(|_| {
            format!("{path}: not one JSON document; select a line (L<n>, last, key=value)")
        });
    };
    // (line number, record) for every record of the file.
    let records: Vec<(usize, Value)> = if csv {
        let mut lines = text.lines().enumerate();
        let header: Vec<String> = match lines.next() {
            Some((_, h)) => h.split(',').map(|s| s.trim().to_string()).collect(),
            None => return Err(format!("{path}: empty CSV")),
        };
        lines
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let map = header
                    .iter()
                    .cloned()
                    .zip(l.split(',').map(|s| Value::String(s.trim().to_string())))
                    .collect();
                (i + 1, Value::Object(map))
            })
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter_map(|(i, l)| {
                serde_json::from_str::<Value>(l.trim())
                    .ok()
                    .filter(|v| v.is_object() || v.is_array())
                    .map(|v| (i + 1, v))
            })
            .collect()
    };
    if selector == "last" {
        return records
            .last()
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("{path}: no JSON line"));
    }
    if let Some(n) = selector
        .strip_prefix('L')
        .and_then(|n| n.parse::<usize>().ok())
    {
        return records
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("{path}: line {n} is not a record"));
    }
    let (conditions, nth) = match selector.rsplit_once('#') {
        Some((c, n)) => (
            c,
            n.parse::<usize>()
                .map_err(|_| format!("{path}: bad match number in {selector:?}"))?,
        ),
        None => (selector, 1),
    };
    let mut wanted = Vec::new();
    for condition in conditions.split('&') {
        let (k, v) = condition
            .split_once('=')
            .ok_or_else(|| format!("{path}: bad selector {selector:?}"))?;
        wanted.push((k, v));
    }
    records
        .iter()
        .filter(|(_, rec)| {
            wanted.iter().all(|(k, v)| match rec.get(*k) {
                Some(Value::String(s)) => s == v,
                Some(other) => {
                    // Numbers and booleans as the file writes them (`"T": 1` matches T=1).
                    let written = other.to_string();
                    written == *v
                }
                None => false,
            })
        })
        .nth(nth.saturating_sub(1))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("{path}: no record {selector:?}"))
}

/// The first number in `text` that `pattern`'s `{}` stands for, or (without `{}`) the
/// pattern itself if `text` contains it.
fn match_pattern(text: &str, pattern: &str) -> Option<Cited> {
    let Some((prefix, suffix)) = pattern.split_once("{}") else {
        return text
            .contains(pattern)
            .then(|| Cited::Text(pattern.to_string()));
    };
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|i| i + from) {
        let rest = &text[at + prefix.len()..];
        let len = rest
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))
            })
            .count();
        if len > 0 && rest[len..].starts_with(suffix) {
            if let Ok(x) = rest[..len].parse::<f64>() {
                return Some(Cited::Number(x));
            }
        }
        from = at + 1;
    }
    None
}

/// Checks one citation; the error says what is wrong.
fn check(c: &Citation, files: &mut Files) -> Result<(), String> {
    let expr = parse_expr(&c.expr)?;
    let (figure, decimals) = parse_figure(&c.figure)?;
    match eval(&expr, files)? {
        Cited::Number(value) => {
            let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) * (1.0 + 1e-9) + 1e-12;
            if (value - figure).abs() <= tolerance {
                Ok(())
            } else {
                Err(format!(
                    "the figure {} does not match the file's {value} (to {decimals} decimals: {value:.decimals$})",
                    c.figure
                ))
            }
        }
        Cited::Text(t) => {
            if t.contains(&c.figure) {
                Ok(())
            } else {
                Err(format!(
                    "the figure {} is not in the cited text {t:?}",
                    c.figure
                ))
            }
        }
    }
}

/// Every failing citation of a document, as `doc:line: figure <!-- expr -->: reason`.
fn failures(doc: &str, text: &str, files: &mut Files) -> Vec<String> {
    citations(text)
        .iter()
        .filter_map(|c| {
            check(c, files)
                .err()
                .map(|e| format!("{doc}:{}: {} <!-- {} -->: {e}", c.line, c.figure, c.expr))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn every_cited_figure_is_held_by_its_results_file() {
    let root = root();
    let mut files = Files::new(&root);
    let mut bad = Vec::new();
    let mut count = 0;
    for doc in DOCUMENTS {
        let path = root.join(doc);
        let Ok(text) = std::fs::read_to_string(&path) else {
            bad.push(format!("{doc}: missing"));
            continue;
        };
        count += citations(&text).len();
        bad.extend(failures(doc, &text, &mut files));
    }
    assert!(
        bad.is_empty(),
        "{} of {count} citations fail (fix the figure, or run `python3 scripts/bench_tables.py`):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_reference_tables_are_cited() {
    // A parser that silently found nothing would pass the test above.
    let text = std::fs::read_to_string(root().join("BENCHMARKS.md")).unwrap();
    let n = citations(&text).len();
    assert!(n >= 100, "BENCHMARKS.md has only {n} citations");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(!citations(&readme).is_empty(), "README.md cites no figure");
}

/// A scratch directory with one results file of each kind, for the tests of the checker.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("drsae_tables_{}_{test}", std::process::id()));
    let results = dir.join("results");
    std::fs::create_dir_all(results.join("sub")).unwrap();
    std::fs::write(
        results.join("run.json"),
        r#"{"test_error":1.07, "config":{"lr":"0.002"}, "samples_per_s":6877.56}"#,
    )
    .unwrap();
    std::fs::write(
        results.join("bench.json"),
        "{\"bench\": \"a\", \"value\": 10.0750}\n{\"bench\": \"b\", \"value\": 2.5}\n{\"bench\": \"a\", \"value\": 8.35}\n",
    )
    .unwrap();
    std::fs::write(
        results.join("run.log"),
        "header\nbest epoch 51 (val 1.37%), test error 1.40%\n{\"test_error\":1.4}\n",
    )
    .unwrap();
    std::fs::write(
        results.join("sub/t.csv"),
        "dataset,T,lista\nmnist,1,0.0939\nmnist,2,0.0747\n",
    )
    .unwrap();
    dir
}

fn check_one(files: &mut Files, cell: &str) -> Result<(), String> {
    let cs = citations(cell);
    assert_eq!(cs.len(), 1, "{cell}");
    check(&cs[0], files)
}

#[test]
fn the_checker_accepts_what_the_files_hold() {
    let dir = scratch("accepts");
    let mut files = Files::new(&dir);
    for cell in [
        "| **1.07 %**<!-- results/run.json /test_error --> |",
        "| 6,878 samples/s<!-- results/run.json /samples_per_s --> |",
        "2e-3 is 0.002<!-- results/run.json /config/lr -->",
        "10.08 Gelem/s<!-- results/bench.json bench=a /value -->",
        "8.4<!-- results/bench.json bench=a#2 /value -->",
        "2.5<!-- results/bench.json L2 /value -->",
        "1.4<!-- results/run.log last /test_error -->",
        "1.40 %<!-- results/run.log \"test error {}%\" -->",
        "epoch 51<!-- results/run.log \"best epoch 51 (val\" -->",
        "0.094<!-- results/sub/t.csv dataset=mnist&T=1 /lista -->",
        "0.084<!-- mean(results/sub/t.csv dataset=mnist&T=1 /lista, results/sub/t.csv dataset=mnist&T=2 /lista) -->",
        "4.03×<!-- ratio(results/bench.json bench=a /value, results/bench.json bench=b /value) -->",
        "1.22<!-- sd(results/bench.json bench=a /value, results/bench.json bench=a#2 /value) -->",
        "8.35–10.08<!-- max(results/bench.json bench=a /value, results/bench.json bench=a#2 /value) -->",
    ] {
        if let Err(e) = check_one(&mut files, cell) {
            panic!("{cell}: {e}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_checker_rejects_broken_citations() {
    let dir = scratch("rejects");
    let mut files = Files::new(&dir);
    for cell in [
        // wrong value, wrong rounding, missing file, missing key, missing line
        "1.08 %<!-- results/run.json /test_error -->",
        "1.1 %<!-- results/run.json /samples_per_s -->",
        "1.07 %<!-- results/nothing.json /test_error -->",
        "1.07 %<!-- results/run.json /val_error -->",
        "10.08<!-- results/bench.json bench=c /value -->",
        "10.08<!-- results/bench.json bench=a#3 /value -->",
        "10.08<!-- results/bench.json /value -->",
        "1.41 %<!-- results/run.log \"test error {}%\" -->",
        "epoch 52<!-- results/run.log \"best epoch 51 (val\" -->",
        "1.40 %<!-- results/run.log \"test error 1.50\" -->",
        "0.075<!-- results/sub/t.csv dataset=mnist&T=1 /lista -->",
        "0.094<!-- results/sub/t.csv /lista -->",
        // outside results/, no figure, figure too far from its citation
        "1.07<!-- results/../Cargo.toml /x -->",
        "<!-- results/run.json /test_error -->",
        "1.07 % is what the test error was<!-- results/run.json /test_error -->",
        "1.07 %<!-- mean(results/run.json /test_error -->",
    ] {
        assert!(check_one(&mut files, cell).is_err(), "accepted: {cell}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn comments_that_are_not_citations_are_ignored() {
    assert!(citations("a <!-- a note --> b <!-- meaning(x) -->").is_empty());
    assert!(citations(
        "`1.0<!-- results/x.json /a -->`\n```\n1.0<!-- results/x.json /a -->\n```\n"
    )
    .is_empty());
    assert_eq!(citations("`code` 1.0<!-- results/x.json /a -->").len(), 1);
    assert_eq!(
        figure_before("| 11,188 / 1,702 samples/s"),
        "1,702".to_string()
    );
    assert_eq!(figure_before("(seed 0: 1.07 %**"), "1.07".to_string());
    assert_eq!(figure_before("x −0.5 "), "-0.5".to_string());
}
