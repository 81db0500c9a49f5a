//! Gives the shared library its SONAME, as C libraries have; and, with the
//! `sasl` feature (on by default), links the system's Cyrus SASL library when
//! pkg-config finds `libsasl2`. Without it the library still builds, and SASL
//! authentication fails with VIR_ERR_NO_SUPPORT saying so.

use std::process::Command;

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvirevent.so.0");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rustc-check-cfg=cfg(virevent_sasl)");
    if std::env::var_os("CARGO_FEATURE_SASL").is_none() {
        return;
    }
    match pkg_config_libs("libsasl2") {
        Some(flags) => {
            for flag in flags.split_whitespace() {
                if let Some(dir) = flag.strip_prefix("-L") {
                    println!("cargo:rustc-link-search=native={dir}");
                } else if let Some(lib) = flag.strip_prefix("-l") {
                    println!("cargo:rustc-link-lib={lib}");
                }
            }
            println!("cargo:rustc-cfg=virevent_sasl");
        }
        None => println!(
            "cargo:warning=libsasl2 not found by pkg-config (package libsasl2-dev): building without SASL authentication"
        ),
    }
}

/// `pkg-config --libs NAME`, or `None` when pkg-config or the package is missing.
fn pkg_config_libs(name: &str) -> Option<String> {
    let output = Command::new("pkg-config").args(["--libs", name]).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
