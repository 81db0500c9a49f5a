//! Everything the code, the tests and the README cite is in the repository:
//! no tracked file names the maintainers' private notes, which users do not
//! have (their facts are in docs/api.md and docs/protocol.md).

use std::process::Command;

mod common;

#[test]
fn no_tracked_file_cites_what_users_do_not_have() {
    if !common::tools::needs("the repository's self-containment", &[common::tools::GIT]) {
        return;
    }
    // Spelled in pieces, so that this file does not name them itself.
    let cited = [concat!("..", "/shared"), concat!("API", ".md"), concat!("LIBVIRT-RPC", ".md"), concat!("LIBVIRT-EVENTS", ".md")];
    let listing = Command::new("git").args(["ls-files", "-z"]).current_dir(common::root()).output().expect("git runs");
    assert!(listing.status.success(), "git ls-files failed");
    let mut found = Vec::new();
    for path in listing.stdout.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        let Ok(text) = std::fs::read(common::root().join(&path)) else { continue };
        let text = String::from_utf8_lossy(&text);
        for (n, line) in text.lines().enumerate() {
            if let Some(name) = cited.iter().find(|name| line.contains(*name)) {
                found.push(format!("{path}:{}: {name}", n + 1));
            }
        }
    }
    assert!(found.is_empty(), "tracked files cite notes users do not have:\n{}", found.join("\n"));
}
