//! docs/virevent-relay.1 and docs/virevent-sub.1 say what each program's
//! --help says: every option, URI parameter and exit status of one is in the
//! other, in order, and the version is the package's (as tests/watch.rs checks
//! docs/virevent-watch.1); and each renders with `man -l` without a warning.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::man::man_tags;
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
        common::man::assert_renders(&common::root().join(path), path, name, VERSION);
    }
}
