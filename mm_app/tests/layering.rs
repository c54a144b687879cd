//! The import layering of `bevygap_matchmaker`, enforced.
//!
//! The crate is built in layers (see the crate docs and the layer comments on the module list in
//! `src/lib.rs`): vocabulary (pure decisions and types), seams, domain, edges, composition. A
//! module may import only from its own layer or below, and within a layer only from modules ranked
//! before it; a lower module that needs to tell a higher one something writes a Bevy `Message` that
//! the higher one reads, it never names the higher module. Every top-level module therefore has a
//! distinct rank in [`RANKED_MODULES`], and a `crate::<module>` reference may only point at the
//! importer itself or at a strictly lower rank, which also makes import cycles impossible.
//!
//! This file reads `src/` as text (std only, no `use bevygap_matchmaker`): it blanks comments and
//! literals, removes `#[cfg(test)]` items (tests may reach anywhere), and collects the first segment
//! of every `crate::` path, in `use` lines, grouped `use crate::{..}` forms and inline paths. The
//! scanner is unit-tested below on small sources so that a broken scanner cannot pass vacuously.
//!
//! Without cargo, from the workspace root: `CARGO_MANIFEST_DIR=$PWD/mm_app rustc --edition 2024
//! --test mm_app/tests/layering.rs -o /tmp/layering && /tmp/layering --nocapture`.

use std::fs;
use std::path::{Path, PathBuf};

/// The rule of the crate: every top-level module with its layer, lowest rank first. A module's rank
/// is its position here; it may reference itself or any module listed before it, nothing after.
const RANKED_MODULES: &[(&str, u8)] = &[
    // L0 vocabulary: pure decisions and types
    ("clock", 0),
    ("game", 0),
    ("observe", 0),
    ("wake", 0),
    ("schedule", 0),
    ("placement", 0),
    ("matching", 0),
    // L1 seams
    ("fence", 1),
    ("nats_bridge", 1),
    ("providers", 1),
    // L2 domain
    ("servers", 2),
    ("tokens", 2),
    ("joins", 2),
    ("matches", 2),
    // L3 edges
    ("telemetry", 3),
    ("calls", 3),
    ("ownership", 3),
    ("endpoints", 3),
    // L4 composition
    ("config", 4),
    ("app", 4),
    ("harness", 4),
];

/// Fewer `crate::` references than this in the real crate means the scan itself is broken.
const PLAUSIBLE_REFERENCE_COUNT: usize = 50;

/// One token of comment- and literal-free source: an identifier (or number) or a single punctuation
/// character, with the 1-based line it starts on, so that findings can point at `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
}

impl Token {
    /// Whether this token is exactly `text`; keeps the pattern matching below readable.
    fn is(&self, text: &str) -> bool {
        self.text == text
    }

    /// Whether this token is an identifier, the only thing a path segment can be.
    fn is_ident(&self) -> bool {
        self.text.chars().next().is_some_and(is_ident_char)
    }
}

/// One `crate::<target>` path in a source file: the line and the top-level module it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    target: String,
}

/// Whether `c` can be part of an identifier or number, which is how words are told from punctuation.
fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Replaces every comment (line, block, doc) and every string, raw string and char literal with
/// spaces, keeping newlines, so that neither `crate::x` in a comment nor a `{` in a literal is seen
/// as code and line numbers stay true.
fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        if is_ident_char(chars[i]) {
            let word_end = ident_end(&chars, i);
            let raw_end =
                if is_raw_string_prefix(&chars[i..word_end]) { raw_string_end(&chars, word_end) } else { None };
            let end = raw_end.unwrap_or(word_end);
            push_kept_or_blanked(&mut out, &chars[i..end], raw_end.is_some());
            i = end;
        } else if let Some(end) = comment_or_literal_end(&chars, i) {
            push_kept_or_blanked(&mut out, &chars[i..end], true);
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Appends `chars` unchanged or as spaces (newlines kept): the one place that decides what blanking
/// means, so every blanked span keeps its length and its line breaks.
fn push_kept_or_blanked(out: &mut String, chars: &[char], blank: bool) {
    out.extend(chars.iter().map(|&c| if blank && c != '\n' { ' ' } else { c }));
}

/// Whether a whole word is a raw-string prefix (`r`, `br`, `cr`); a word such as `bar` never is.
fn is_raw_string_prefix(word: &[char]) -> bool {
    matches!(word, ['r'] | ['b' | 'c', 'r'])
}

/// The index just past the identifier starting at `start`; identifiers are consumed whole so that a
/// raw-string prefix is only recognised as a word of its own (`r`, `br`, `cr`), never inside `bar`.
fn ident_end(chars: &[char], start: usize) -> usize {
    chars[start..].iter().position(|&c| !is_ident_char(c)).map_or(chars.len(), |n| start + n)
}

/// If a comment, string or char literal starts at `i`, the index just past it; `None` for code,
/// including a lifetime such as `'a`, which looks like the start of a char literal.
fn comment_or_literal_end(chars: &[char], i: usize) -> Option<usize> {
    match (chars[i], chars.get(i + 1)) {
        ('/', Some('/')) => Some(line_comment_end(chars, i)),
        ('/', Some('*')) => Some(block_comment_end(chars, i)),
        ('"', _) => Some(string_end(chars, i)),
        ('\'', _) => char_literal_end(chars, i),
        _ => None,
    }
}

/// The end of a `//` comment (doc comments included): the newline, which is kept.
fn line_comment_end(chars: &[char], start: usize) -> usize {
    chars[start..].iter().position(|&c| c == '\n').map_or(chars.len(), |n| start + n)
}

/// The index just past a `/* .. */` comment, counting nesting as Rust does.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('/', Some('*')) => {
                depth += 1;
                i += 2;
            }
            ('*', Some('/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index just past a `".."` literal starting at `start`, skipping escapes such as `\"`.
fn string_end(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// If a raw string's hashes and opening quote follow a `r`/`br`/`cr` prefix ending at `after_prefix`,
/// the index just past its closing quote and hashes; `None` for a raw identifier such as `r#type`.
fn raw_string_end(chars: &[char], after_prefix: usize) -> Option<usize> {
    let hashes = chars[after_prefix..].iter().take_while(|&&c| c == '#').count();
    let quote = after_prefix + hashes;
    if chars.get(quote) != Some(&'"') {
        return None;
    }
    let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
    let body = quote + 1;
    let found = chars[body..].windows(closing.len()).position(|window| window == closing.as_slice());
    Some(found.map_or(chars.len(), |n| body + n + closing.len()))
}

/// If a char literal starts at `start` (`'{'`, `'\''`, `'\u{7b}'`), the index just past it; `None`
/// when the quote begins a lifetime or label instead.
fn char_literal_end(chars: &[char], start: usize) -> Option<usize> {
    if chars.get(start + 1) == Some(&'\\') {
        let after_escape = start + 3;
        let close = chars.get(after_escape..)?.iter().position(|&c| c == '\'')?;
        return Some(after_escape + close + 1);
    }
    (chars.get(start + 2) == Some(&'\'')).then_some(start + 3)
}

/// Splits blanked source into identifiers and single punctuation characters with their lines; paths,
/// attributes and braces are then matched on tokens, whatever the whitespace between them.
fn tokenize(clean: &str) -> Vec<Token> {
    let chars: Vec<char> = clean.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            line += usize::from(c == '\n');
            i += 1;
        } else if is_ident_char(c) {
            let end = ident_end(&chars, i);
            tokens.push(Token { text: chars[i..end].iter().collect(), line });
            i = end;
        } else {
            tokens.push(Token { text: c.to_string(), line });
            i += 1;
        }
    }
    tokens
}

/// Whether the tokens at `i` spell `texts` in order; the building block of every pattern here.
fn tokens_spell(tokens: &[Token], i: usize, texts: &[&str]) -> bool {
    tokens.get(i..i + texts.len()).is_some_and(|window| window.iter().zip(texts).all(|(t, text)| t.is(text)))
}

/// The `#[cfg(test)]` attribute as tokens: what marks an item as test-only.
const CFG_TEST: &[&str] = &["#", "[", "cfg", "(", "test", ")", "]"];

/// The `#![cfg(test)]` inner attribute as tokens: a whole file that is test-only.
const INNER_CFG_TEST: &[&str] = &["#", "!", "[", "cfg", "(", "test", ")", "]"];

/// Drops every item annotated `#[cfg(test)]` (a `mod tests { .. }`, a `use` line, a fn, a statement),
/// because test code may reach any layer. A file with `#![cfg(test)]` is dropped whole.
fn strip_test_items(tokens: &[Token]) -> Vec<Token> {
    if (0..tokens.len()).any(|i| tokens_spell(tokens, i, INNER_CFG_TEST)) {
        return Vec::new();
    }
    let mut kept = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens_spell(tokens, i, CFG_TEST) {
            i = item_end(tokens, i);
        } else {
            kept.push(tokens[i].clone());
            i += 1;
        }
    }
    kept
}

/// The index just past `#[..]` attributes starting at `start` (there may be several, such as
/// `#[cfg(test)] #[allow(..)]`), where the item they annotate begins.
fn after_attributes(tokens: &[Token], start: usize) -> usize {
    let mut i = start;
    while tokens_spell(tokens, i, &["#", "["]) {
        i = matching_close(tokens, i + 1);
    }
    i
}

/// The index just past the delimiter closing the one opened at `open` (brackets of any kind are
/// counted together, which is enough for well-formed source).
fn matching_close(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(open) {
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The index just past the item whose attributes start at `start`: at the `;` ending a `use`,
/// statement or declaration, or at the `}` closing a body (`mod`, `fn`, `impl`, ..). An item with a
/// value (`let`, `const`, `static`) ends only at its `;`, since its braces may be `if`/`else`. If
/// the enclosing block closes first, the item ends there.
fn item_end(tokens: &[Token], start: usize) -> usize {
    let item = after_attributes(tokens, start);
    let ends_at_semicolon = is_valued_item(tokens, item);
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate().skip(item) {
        match token.text.as_str() {
            ";" if depth == 0 => return i + 1,
            "{" if depth == 0 && !ends_at_semicolon => return matching_close(tokens, i),
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" if depth == 0 => return i,
            ")" | "]" | "}" => depth -= 1,
            _ => {}
        }
    }
    tokens.len()
}

/// Whether the item at `i` holds a value (`let`, `static`, or `const` that is not `const fn`), so
/// that braces in it are an expression and the item runs on to its `;`.
fn is_valued_item(tokens: &[Token], i: usize) -> bool {
    let after_visibility = skip_visibility(tokens, i);
    let Some(keyword) = tokens.get(after_visibility) else { return false };
    let next = tokens.get(after_visibility + 1).map(|t| t.text.as_str());
    match keyword.text.as_str() {
        "let" | "static" => true,
        "const" => !matches!(next, Some("fn" | "unsafe" | "async" | "extern")),
        _ => false,
    }
}

/// The index past a `pub`, `pub(crate)` or `pub(in ..)` visibility at `i`, if there is one.
fn skip_visibility(tokens: &[Token], i: usize) -> usize {
    if !tokens.get(i).is_some_and(|t| t.is("pub")) {
        return i;
    }
    if tokens.get(i + 1).is_some_and(|t| t.is("(")) { matching_close(tokens, i + 1) } else { i + 1 }
}

/// Every `crate::<module>` reference in the tokens: `use crate::x::..`, `pub use`, inline paths, and
/// each entry of a grouped `use crate::{a::B, b}`. A glob from the crate root is reported as `*`.
fn crate_references(tokens: &[Token]) -> Vec<Reference> {
    let mut references = Vec::new();
    for i in 0..tokens.len() {
        if !tokens_spell(tokens, i, &["crate", ":", ":"]) {
            continue;
        }
        let Some(next) = tokens.get(i + 3) else { continue };
        if next.is("{") {
            references.extend(grouped_references(tokens, i + 3));
        } else if next.is_ident() || next.is("*") {
            references.push(Reference { line: next.line, target: next.text.clone() });
        }
    }
    references
}

/// The first segment of each entry of the group opened at `open` (`{a::B, b, c::{D, E}}` gives `a`,
/// `b` and `c`); nested groups belong to their entry, and `self` names the crate root, no module.
fn grouped_references(tokens: &[Token], open: usize) -> Vec<Reference> {
    let mut references = Vec::new();
    let mut depth = 0usize;
    let mut entry_starts = true;
    for token in &tokens[open..] {
        match token.text.as_str() {
            "{" => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => {
                entry_starts = true;
                continue;
            }
            "self" => {}
            _ if depth == 1 && entry_starts && (token.is_ident() || token.is("*")) => {
                references.push(Reference { line: token.line, target: token.text.clone() });
            }
            _ => {}
        }
        entry_starts = false;
    }
    references
}

/// Every non-test `crate::` reference in one source file: blank, tokenize, strip tests, collect.
fn scan_source(source: &str) -> Vec<Reference> {
    let tokens = tokenize(&blank_comments_and_literals(source));
    crate_references(&strip_test_items(&tokens))
}

/// The top-level modules declared in `lib.rs` (`pub mod x;`, `mod x;`, `pub(crate) mod x { .. }`,
/// attributes such as `#[cfg(feature = "..")]` allowed), outside test code, in source order.
fn declared_modules(lib_source: &str) -> Vec<String> {
    let tokens = strip_test_items(&tokenize(&blank_comments_and_literals(lib_source)));
    let mut modules = Vec::new();
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token.text.as_str() {
            "{" => depth += 1,
            "}" => depth = depth.saturating_sub(1),
            "mod" if depth == 0 => {
                if let Some(name) = tokens.get(i + 1).filter(|t| t.is_ident()) {
                    modules.push(name.text.clone());
                }
            }
            _ => {}
        }
    }
    modules
}

/// The crate's `src` directory, found the way cargo tells a test where its crate is.
fn source_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// Every `.rs` file under `dir`, recursively, sorted so that the report is stable.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read directory {}: {e}", dir.display()));
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("read an entry of {}: {e}", dir.display())).path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text of a source file; a file that cannot be read fails the test rather than being skipped.
fn read_source(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The top-level module a file under `src` belongs to (`calls/desk.rs` and `calls/mod.rs` to
/// `calls`, `clock.rs` to `clock`); `None` for `lib.rs`, which only declares modules, and `main.rs`,
/// which uses the crate by name.
fn top_level_module(relative: &Path) -> Option<String> {
    if relative == Path::new("lib.rs") || relative == Path::new("main.rs") {
        return None;
    }
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
}

/// A module's rank (its position in [`RANKED_MODULES`]) and layer, or `None` if it is unranked.
fn rank_of(module: &str) -> Option<(usize, u8)> {
    RANKED_MODULES.iter().position(|(name, _)| *name == module).map(|rank| (rank, RANKED_MODULES[rank].1))
}

/// A module's layer as printed in a violation: `L2`, or `unranked` for a module not in the table.
fn layer_label(module: &str) -> String {
    rank_of(module).map_or_else(|| "unranked".to_string(), |(_, layer)| format!("L{layer}"))
}

/// Whether `importer` may reference `target`: itself, or a ranked module strictly below it.
fn reference_allowed(importer: &str, target: &str) -> bool {
    if importer == target {
        return true;
    }
    matches!((rank_of(importer), rank_of(target)), (Some((from, _)), Some((to, _))) if to < from)
}

/// The report line for a reference that breaks the rule, `None` if it is allowed.
fn violation(file: &str, importer: &str, reference: &Reference) -> Option<String> {
    let Reference { line, target } = reference;
    (!reference_allowed(importer, target)).then(|| {
        format!("{file}:{line}: {importer} ({}) imports {target} ({})", layer_label(importer), layer_label(target))
    })
}

/// One scanned file of the real crate: its path for the report, its module, and its references.
struct ScannedFile {
    display: String,
    module: String,
    references: Vec<Reference>,
}

/// Scans every importer file of the real crate (all of `src` but `lib.rs` and `main.rs`).
fn scan_crate() -> Vec<ScannedFile> {
    let src = source_dir();
    let mut scanned = Vec::new();
    for path in rust_files(&src) {
        let relative = path.strip_prefix(&src).expect("a file found under src is under src");
        let Some(module) = top_level_module(relative) else { continue };
        let display = format!("src/{}", relative.display());
        scanned.push(ScannedFile { display, module, references: scan_source(&read_source(&path)) });
    }
    scanned
}

/// Every violation in the real crate, one report line each (duplicates on one line folded).
fn crate_violations(scanned: &[ScannedFile]) -> Vec<String> {
    let mut violations: Vec<String> = scanned
        .iter()
        .flat_map(|file| file.references.iter().filter_map(|r| violation(&file.display, &file.module, r)))
        .collect();
    violations.dedup();
    violations
}

#[test]
fn every_module_imports_only_from_itself_or_lower_ranks() {
    let violations = crate_violations(&scan_crate());
    assert!(
        violations.is_empty(),
        "{} layering violations (a module may import only itself or lower ranks; see RANKED_MODULES):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_scan_of_the_real_crate_finds_references() {
    let scanned = scan_crate();
    let total: usize = scanned.iter().map(|file| file.references.len()).sum();
    assert!(scanned.len() > 10, "only {} source files found under {}", scanned.len(), source_dir().display());
    assert!(total > PLAUSIBLE_REFERENCE_COUNT, "only {total} crate:: references found: the scanner is broken");
}

#[test]
fn every_declared_module_is_ranked_and_every_ranked_module_is_declared() {
    let declared = declared_modules(&read_source(&source_dir().join("lib.rs")));
    let unranked: Vec<&String> = declared.iter().filter(|m| rank_of(m).is_none()).collect();
    let undeclared: Vec<&str> =
        RANKED_MODULES.iter().map(|(name, _)| *name).filter(|name| !declared.iter().any(|m| m == name)).collect();
    assert!(unranked.is_empty(), "modules declared in src/lib.rs but missing from RANKED_MODULES: {unranked:?}");
    assert!(undeclared.is_empty(), "modules in RANKED_MODULES but not declared in src/lib.rs: {undeclared:?}");
}

#[test]
fn ranked_modules_are_distinct_and_layers_ascend() {
    for (rank, (name, layer)) in RANKED_MODULES.iter().enumerate() {
        assert_eq!(rank_of(name).map(|(r, _)| r), Some(rank), "{name} is listed twice");
        let previous = rank.checked_sub(1).map_or(0, |r| RANKED_MODULES[r].1);
        assert!(*layer >= previous, "{name} (L{layer}) is listed after a module of layer L{previous}");
    }
}

/// The scanner on small sources: each case would let a broken scanner pass the real-crate test.
mod scanner_tests {
    use super::*;

    /// The targets found in `source`, the shape most cases compare.
    fn targets(source: &str) -> Vec<String> {
        scan_source(source).into_iter().map(|r| r.target).collect()
    }

    #[test]
    fn grouped_use_yields_the_first_segment_of_each_entry() {
        assert_eq!(targets("use crate::{a::B, b, c::{D, E}};"), ["a", "b", "c"]);
        assert_eq!(targets("use crate::{\n    self,\n    joins::{self, Join},\n    wake,\n};"), ["joins", "wake"]);
    }

    #[test]
    fn use_and_pub_use_yield_the_first_segment_on_its_line() {
        let found =
            scan_source("use std::fmt;\npub use crate::clock::now;\n\npub(crate) use crate::game::GameKey as Key;");
        let expected = [Reference { line: 2, target: "clock".into() }, Reference { line: 4, target: "game".into() }];
        assert_eq!(found, expected);
    }

    #[test]
    fn inline_paths_are_references() {
        let source = "fn f() {\n    crate::observe::server_launched(&id);\n    if crate::fence::acting(o) {}\n}";
        assert_eq!(targets(source), ["observe", "fence"]);
        assert_eq!(targets("let x: Vec<crate :: joins :: Join> = $crate::wake::now();"), ["joins", "wake"]);
    }

    #[test]
    fn a_cfg_test_module_is_removed_despite_braces_in_literals_and_comments() {
        let source = r###"
use crate::clock;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    const CLOSE: &str = "}\"}";
    const OPEN: char = '{';
    const QUOTE: char = '\'';
    const ESCAPED: char = '\u{7d}';
    const RAW: &str = r#"}"}"#;
    const RAWER: &[u8] = br##"}"#}"##;
    // }
    /* } /* nested } */ } */
    fn f<'a>(x: &'a str) -> &'a str { x }
    use crate::harness::Stepped;
}
fn after() { crate::wake::now(); }
"###;
        assert_eq!(targets(source), ["clock", "wake"]);
    }

    #[test]
    fn a_cfg_test_use_line_fn_and_statement_are_removed() {
        let source = "#[cfg(test)]\nuse crate::harness::X;\n#[ cfg( test ) ]\npub(crate) fn helper() -> [u8; 2] { \
                      crate::app::y() }\nfn g() {\n    #[cfg(test)]\n    let s = if a { crate::calls::x() } else { \
                      crate::calls::y() };\n    crate::tokens::z();\n}\nuse crate::game;";
        let found = scan_source(source);
        let expected = [Reference { line: 8, target: "tokens".into() }, Reference { line: 10, target: "game".into() }];
        assert_eq!(found, expected);
    }

    #[test]
    fn an_inner_cfg_test_drops_the_whole_file() {
        assert!(targets("#![cfg(test)]\nuse crate::harness::X;").is_empty());
    }

    #[test]
    fn comments_doc_comments_and_strings_do_not_count() {
        let source = "//! See crate::joins.\n/// ```\n/// use bevygap_matchmaker::tokens;\n/// crate::tokens::x();\n\
                      /// ```\n// crate::app::y\n/* crate::calls */\n#[doc = \"crate::config\"]\nconst S: &str = \
                      \"crate::endpoints\";\nconst R: &str = r#\"crate::harness\"#;\nuse crate::clock;";
        assert_eq!(scan_source(source), [Reference { line: 11, target: "clock".into() }]);
    }

    #[test]
    fn lifetimes_and_raw_identifiers_are_code() {
        let source = "fn f<'a>(x: &'a str, r#type: u8) -> &'a str { 'outer: loop { crate::clock::now(); } }";
        assert_eq!(targets(source), ["clock"]);
    }

    #[test]
    fn visibility_super_and_other_crates_are_not_references() {
        let source = "pub(crate) fn f() {}\npub(crate) struct S;\nuse super::x;\nuse bevygap_shared::crate_x;\n\
                      extern crate core;";
        assert!(targets(source).is_empty());
    }

    #[test]
    fn lib_declarations_include_attributed_and_private_modules_only_at_top_level() {
        let lib = "//! Docs: mod nope;\n// L0\npub mod clock;\n#[cfg(feature = \"harness\")]\npub mod harness;\nmod \
                   private;\npub(crate) mod inline { mod nested; }\n#[cfg(test)]\nmod tests;";
        assert_eq!(declared_modules(lib), ["clock", "harness", "private", "inline"]);
    }

    #[test]
    fn files_belong_to_their_top_level_module() {
        assert_eq!(top_level_module(Path::new("calls/desk.rs")).as_deref(), Some("calls"));
        assert_eq!(top_level_module(Path::new("calls/mod.rs")).as_deref(), Some("calls"));
        assert_eq!(top_level_module(Path::new("providers/edgegap/sweep.rs")).as_deref(), Some("providers"));
        assert_eq!(top_level_module(Path::new("clock.rs")).as_deref(), Some("clock"));
        assert_eq!(top_level_module(Path::new("lib.rs")), None);
        assert_eq!(top_level_module(Path::new("main.rs")), None);
    }

    #[test]
    fn the_rule_allows_only_self_and_strictly_lower_ranks() {
        assert!(reference_allowed("joins", "joins"), "a module may use itself");
        assert!(reference_allowed("joins", "tokens"), "a lower rank in the same layer");
        assert!(reference_allowed("joins", "clock"), "a lower layer");
        assert!(!reference_allowed("tokens", "joins"), "a higher rank in the same layer");
        assert!(!reference_allowed("clock", "harness"), "a higher layer");
        assert!(!reference_allowed("joins", "sessions"), "an unranked target");
        assert!(!reference_allowed("sessions", "clock"), "an unranked importer");
    }

    #[test]
    fn a_violation_names_file_line_modules_and_layers() {
        let upward = Reference { line: 7, target: "endpoints".into() };
        let allowed = Reference { line: 8, target: "clock".into() };
        assert_eq!(
            violation("src/joins/systems.rs", "joins", &upward).as_deref(),
            Some("src/joins/systems.rs:7: joins (L2) imports endpoints (L3)")
        );
        assert_eq!(violation("src/joins/systems.rs", "joins", &allowed), None);
        let glob = Reference { line: 1, target: "*".into() };
        assert_eq!(
            violation("src/app.rs", "app", &glob).as_deref(),
            Some("src/app.rs:1: app (L4) imports * (unranked)")
        );
    }
}
