//! The source tree's folders are its layers: a module uses only modules of a lower
//! layer (or, within ops and provision, its siblings), so the folder listing reads as the
//! architecture. This test reads `src/` and fails on any import that goes up.

use std::path::Path;

/// Each top-level library module's layer: higher layers use lower ones, never back.
const LAYERS: &[(&str, u8)] = &[
    ("ops", 5),
    ("provision", 5),
    ("master", 5),
    ("store", 4),
    ("trust", 3),
    ("keys", 2),
    ("envelope", 2),
    ("manifest", 2),
    ("document", 2),
    ("export", 2),
    ("project", 1),
    ("project_id", 1),
    ("process", 1),
    ("git", 1),
    ("fs", 1),
    ("error", 1),
    ("secret", 1),
    ("notice", 1),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every `crate::NAME` a file names outside its unit tests.
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect()
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_str().unwrap();
        let top = top.trim_end_matches(".rs");
        if top == "bin" || top == "lib" {
            continue;
        }
        let own = layer(top).unwrap_or_else(|| panic!("{top}: give it a layer in LAYERS"));
        for m in imports(&std::fs::read_to_string(file).unwrap()) {
            let Some(theirs) = layer(&m) else { continue };
            // Siblings in one layer may use each other only among the leaves (layers 1
            // and 2); store and trust stand alone in theirs.
            let up = theirs > own || (theirs == own && m != top && (3..5).contains(&own));
            if up {
                upward.push(format!("{}: uses {m}", rel.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that go up a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_library_writes_nothing_to_the_terminal() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut printing = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(src.join("bin"))) {
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for (n, line) in code.lines().enumerate() {
            let prints = [
                "println!",
                "eprintln!",
                "print!(",
                "eprint!(",
                "indicatif::",
            ]
            .iter()
            .any(|p| line.contains(p));
            // The crash tests' pause point announces itself on stderr by design.
            if prints && !line.contains("vault-test-pause") {
                printing.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(
        printing.is_empty(),
        "the library prints:\n{}",
        printing.join("\n")
    );
}

/// A file's module path: `src/provision/host.rs` is `provision::host`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

#[test]
fn no_two_modules_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")));
    let modules: Vec<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = std::collections::BTreeSet::new();
    for (file, module) in files.iter().zip(&modules) {
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for (i, _) in code.match_indices("crate::") {
            let path: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            // The longest module the path names, other than this one or its own parts.
            let target = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|m| modules.contains(m));
            if let Some(t) = target {
                let nested =
                    t.starts_with(&format!("{module}::")) || module.starts_with(&format!("{t}::"));
                if t != *module && !nested {
                    edges.insert((module.clone(), t));
                }
            }
        }
    }
    let circles: Vec<String> = edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| format!("{a} <-> {b}"))
        .collect();
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}
