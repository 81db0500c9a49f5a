//! Reading and rendering the project's man pages, for the tests that hold
//! them to each program's --help (tests/watch.rs, relay/tests/man.rs) and to
//! what an installation renders (tests/install.rs, relay/tests/man.rs).

use std::path::Path;
use std::process::Command;

/// A roff escape-bearing string as text: font changes gone, escapes read.
pub fn roff_unescape(text: &str) -> String {
    let mut text = text.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", "\"").replace("\\e", "\\");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text
}

/// The text of a font macro line: `.B` and `.I` join their arguments with
/// spaces, `.BI`, `.BR` and the like with nothing (`.BI \-\-uri " URI"` is
/// `--uri URI`); a double-quoted argument keeps its spaces.
pub fn roff_text(line: &str) -> String {
    let (mac, rest) = line.split_once(' ').unwrap_or((line, ""));
    let mut args = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (arg, tail) = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        args.push(roff_unescape(arg));
        rest = tail.trim_start();
    }
    args.join(if matches!(mac, ".B" | ".I") { " " } else { "" })
}

/// The tags of `.TP` items in the man page's section `name` (`.SH NAME`), as text.
pub fn man_tags(page: &str, name: &str) -> Vec<String> {
    let section = page
        .split("\n.SH ")
        .find(|s| s.lines().next().map(|l| l.trim_matches('"')) == Some(name))
        .unwrap_or_else(|| panic!("no section {name} in the man page"));
    let lines: Vec<&str> = section.lines().collect();
    lines.windows(2).filter(|w| w[0] == ".TP").map(|w| roff_text(w[1])).collect()
}

/// Renders the page at `file` (`label` in messages) with `man -l` to a pipe,
/// as `man -l PAGE | less` does, with every groff warning on, and asserts
/// no warning, the NAME line `name`, the version `version` and lines no wider
/// than MANWIDTH=80; then that lexgrog, what mandb and whatis read, finds
/// the NAME line too.
pub fn assert_renders(file: &Path, label: &str, name: &str, version: &str) {
    let output = Command::new("man")
        .args(["--warnings=w", "-l"])
        .arg(file)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("man runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && warnings.is_empty(), "man -l {label}: {}\n{warnings}", output.status);
    assert!(text.contains(name), "{label} renders no NAME line {name:?}:\n{text}");
    assert!(text.contains(&format!("virevent {version}")), "{label} names no version {version}");
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{label} renders a line wider than MANWIDTH=80: {line:?}");
    }
    let whatis = Command::new("lexgrog").arg(file).output().expect("lexgrog runs");
    let text = String::from_utf8_lossy(&whatis.stdout);
    assert!(whatis.status.success() && text.contains(name), "lexgrog {label}: {text}");
}
