//! docs/virevent-relay.1 and docs/virevent-sub.1 say what each program's
//! --help says: every option, URI parameter and exit status of one is in the
//! other, in order, and the version is the package's (as tests/watch.rs checks
//! docs/virevent-watch.1); and each renders with `man -l` without a warning.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::tools;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const RELAY: &str = env!("CARGO_BIN_EXE_virevent-relay");
const SUB: &str = env!("CARGO_BIN_EXE_virevent-sub");

/// The programs, their pages, and their NAME lines.
const PAGES: [(&str, &str, &str, &str); 2] = [
    ("virevent-relay", RELAY, "docs/virevent-relay.1", "virevent-relay - publish libvirt events to NATS JetStream"),
    ("virevent-sub", SUB, "docs/virevent-sub.1", "virevent-sub - print the libvirt events a NATS JetStream stream holds"),
];

fn help(program: &str) -> String {
    let output = Command::new(program).arg("--help").output().expect("the program runs");
    assert!(output.status.success(), "{program} --help: {}", output.status);
    String::from_utf8(output.stdout).unwrap()
}

fn page(path: &str) -> String {
    std::fs::read_to_string(common::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What `--help` lists, for the lines at two spaces that `starts` says: the
/// option or parameter and its metavariable (`--uri URI`, `-h, --help`,
/// `--storage file|memory`, `deliver=all|new|last`), the words before the
/// description's: each starts with '-', holds '=' or '|', or is upper case.
fn help_items(help: &str, starts: impl Fn(&str) -> bool) -> Vec<String> {
    let tag = |w: &&str| {
        w.starts_with('-') || w.contains(['=', '|']) || w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    };
    help.lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| starts(l))
        .map(|l| l.split_whitespace().take_while(tag).collect::<Vec<_>>().join(" "))
        .collect()
}

/// The options of --help.
fn help_options(help: &str) -> Vec<String> {
    help_items(help, |l| l.starts_with('-'))
}

/// virevent-sub's URI parameters, `NAME=VALUE` before "Options:".
fn help_params(help: &str) -> Vec<String> {
    let before = help.split_once("\nOptions:\n").expect("an Options section").0;
    help_items(before, |l| l.split_once('=').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')))
}

/// The exit statuses of --help: `  0  ...` under "Exit status:".
fn help_statuses(help: &str) -> Vec<String> {
    let exit = help.split_once("\nExit status:\n").expect("an Exit status section").1;
    exit.lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_once("  ").map(|(n, _)| n.to_string()))
        .filter(|n| n.parse::<u8>().is_ok())
        .collect()
}

/// A roff escape-bearing string as text: font changes gone, escapes read.
fn roff_unescape(text: &str) -> String {
    let mut text = text.replace("\\-", "-").replace("\\(aq", "'").replace("\\(dq", "\"").replace("\\e", "\\");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text
}

/// The text of a font macro line: `.B` and `.I` join their arguments with
/// spaces, `.BI`, `.BR` and the like with nothing (`.BI \-\-uri " URI"` is
/// `--uri URI`); a double-quoted argument keeps its spaces.
fn roff_text(line: &str) -> String {
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
fn man_tags(page: &str, name: &str) -> Vec<String> {
    let section = page
        .split("\n.SH ")
        .find(|s| s.lines().next().map(|l| l.trim_matches('"')) == Some(name))
        .unwrap_or_else(|| panic!("no section {name} in the man page"));
    let lines: Vec<&str> = section.lines().collect();
    lines.windows(2).filter(|w| w[0] == ".TP").map(|w| roff_text(w[1])).collect()
}

#[test]
fn each_man_page_says_what_help_says() {
    for (name, program, path, _) in PAGES {
        let help = help(program);
        let page = page(path);

        let options = help_options(&help);
        assert!(options.len() >= 7, "{name}: {options:?}");
        assert!(options.iter().any(|o| o == "-h, --help") && options.iter().any(|o| o == "--version"), "{options:?}");
        assert_eq!(man_tags(&page, "OPTIONS"), options, "the options of {path} against {name} --help's, in order");

        let statuses = help_statuses(&help);
        assert_eq!(statuses, ["0", "1", "2"], "{name}");
        assert_eq!(man_tags(&page, "EXIT STATUS"), statuses, "the exit statuses of {path}");

        // The version, in the header line and in --version's words.
        let th = page.lines().find(|l| l.starts_with(".TH ")).expect(".TH");
        assert!(th.contains(&format!("\"virevent {VERSION}\"")), "{th}");
        let version = format!("({} {VERSION})", name.replace('-', "\\-"));
        assert!(page.contains(&version), "{path} has no {version}");
        assert!(help.contains(&format!("({name} {VERSION})")), "{name} --help names no version");

        // Every option the page names anywhere is one of --help's, or one of
        // virevent-watch's that the page compares the program with.
        let known: Vec<&str> =
            options.iter().flat_map(|o| o.split([' ', ','])).filter(|w| w.starts_with('-')).collect();
        let roff = page.replace("\\-", "-");
        for word in roff.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|w| w.starts_with("--")) {
            assert!(known.contains(&word), "{path} names {word}, which {name} --help does not have");
        }
    }
}

#[test]
fn the_sub_page_has_every_uri_parameter_of_help() {
    let help = help(SUB);
    let params = help_params(&help);
    assert_eq!(
        params.iter().map(|p| p.split('=').next().unwrap()).collect::<Vec<_>>(),
        ["subject", "durable", "deliver", "start-seq", "start-time"],
        "{params:?}"
    );
    assert_eq!(man_tags(&page("docs/virevent-sub.1"), "URI"), params, "the URI parameters of docs/virevent-sub.1");
}

#[test]
fn the_man_pages_render_without_warnings() {
    if !tools::needs("rendering the relay's man pages", &[tools::MAN, tools::GROFF, tools::LEXGROG]) {
        return;
    }
    for (_, _, path, name) in PAGES {
        let file = common::root().join(path);
        // man -l to a pipe, as `man -l PAGE | less` does, with every groff
        // warning on.
        let output = Command::new("man")
            .args(["--warnings=w", "-l"])
            .arg(&file)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("man runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let warnings = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && warnings.is_empty(), "man -l {path}: {}\n{warnings}", output.status);
        assert!(text.contains(name), "{path} renders no NAME line {name:?}:\n{text}");
        assert!(text.contains(&format!("virevent {VERSION}")), "{path} names no version {VERSION}");
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{path} renders a line wider than MANWIDTH=80: {line:?}");
        }
        // What mandb and whatis will read of it.
        let whatis = Command::new("lexgrog").arg(&file).output().expect("lexgrog runs");
        let whatis = String::from_utf8_lossy(&whatis.stdout);
        assert!(whatis.contains(name), "lexgrog {path}: {whatis}");
    }
}
