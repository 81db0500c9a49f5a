//! Gives the shared library its SONAME, as C libraries have.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvirevent.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
