//! The README works as written: every command in its code blocks is run, as
//! written, by .ci/run or by a test that says so (a `README: <command>` comment
//! beside the code that runs it), and its Python example runs.

use std::process::Command;

mod common;

use common::{library_dir, root, tools};

/// The command lines of the README's indented code blocks (not its C and
/// Python blocks, nor the sample output in others): what a reader copies.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut fenced = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(code) = line.strip_prefix("    ").filter(|_| !fenced) else { continue };
        // Sample output: events, and virevent-watch's lines.
        if code.starts_with('<') || code.starts_with(|c: char| c.is_ascii_digit()) || code.trim().is_empty() {
            continue;
        }
        let command = code.split("  #").next().unwrap_or(code).trim_end();
        commands.push(command.to_string());
    }
    commands
}

/// Whether the .ci/run line `line` runs `command` as written: the line itself,
/// in a subshell, or installing what is missing.
fn ci_runs(line: &str, command: &str) -> bool {
    let line = line.trim();
    line == command
        || line.strip_prefix('(').and_then(|l| l.strip_suffix(')')) == Some(command)
        || line.split_once(" || ").is_some_and(|(check, then)| check.starts_with("command -v ") && then == command)
}

/// Where each README command is run, when not in .ci/run itself.
/// relay/tests/fleet_doc.rs runs the relay's two against a private libvirtd and
/// nats-server in place of qemu:///system and bus.example.com (it says so).
const RUN_BY_TESTS: &[&str] =
    &["tests/install.rs", "tests/c_programs.rs", "tests/watch.rs", "tests/python/test_package.py", "relay/tests/fleet_doc.rs"];

#[test]
fn every_readme_command_is_run_by_ci_or_a_test() {
    let commands = readme_commands();
    assert!(commands.len() >= 10, "only {} commands found in README.md: {commands:?}", commands.len());
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let tests: Vec<(String, String)> = RUN_BY_TESTS
        .iter()
        .map(|path| (path.to_string(), std::fs::read_to_string(root().join(path)).unwrap()))
        .collect();
    let unrun: Vec<&String> = commands
        .iter()
        .filter(|command| {
            let marker = format!("README: {command}");
            !ci.lines().any(|line| ci_runs(line, command))
                && !tests.iter().any(|(_, text)| text.contains(&marker))
        })
        .collect();
    assert!(unrun.is_empty(), "README commands nothing runs (add them to .ci/run, or mark the test that runs them):\n{unrun:#?}");
}

/// The README's Python example, run against this build's library.
#[test]
fn the_readme_python_example_runs() {
    if !tools::needs("the README's Python example", &[tools::PYTHON3]) {
        return;
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = readme.split("```python\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a Python block");
    let output = Command::new("python3")
        .args(["-c", example])
        .env("VIREVENT_LIB", library_dir().join("libvirevent.so"))
        .env("PYTHONPATH", root().join("bindings/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("<new-state>paused</new-state>"), "{stdout}");
}
