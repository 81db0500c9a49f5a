//! Installed like a C library: `make -C examples-c install-files` puts the
//! library (with its soname links), the static archive, the header and
//! virevent.pc under a prefix; a C program then builds with pkg-config's flags
//! alone and runs. The same target installs virevent-watch, which runs without
//! the library path, its man page and virevent(3), which man renders without a
//! warning, and the Python module, which finds the installed library. And the
//! shared library exports exactly the header's functions, as `nm -D` sees
//! them, each of which virevent(3) documents. And the README's C example
//! builds and runs as the README says.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{library_dir, root, tools};

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{command:?} failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The package version, as the Makefile reads it from Cargo.toml.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A temporary folder, removed on drop (on panic too): a prefix that
/// `make install-files` filled, or the top of a repository.
struct Folder(PathBuf);

impl Folder {
    /// Installs this build (its library, and the virevent-watch cargo built for
    /// the tests) under a new folder named after `what`.
    fn install(what: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("virevent-install-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let prefix = Folder(dir);
        let watch = Path::new(env!("CARGO_BIN_EXE_virevent-watch"));
        run(Command::new("make")
            .args(["-s", "-C"])
            .arg(root().join("examples-c"))
            .arg("install-files")
            .arg(format!("PREFIX={}", prefix.0.display()))
            .arg(format!("LIBDIR={}", library_dir().display()))
            .arg(format!("BINDIR={}", watch.parent().unwrap().display())));
        prefix
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The permission bits of `path` (of the link itself for a symbolic link).
fn mode(path: &Path) -> u32 {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o7777
}

#[test]
fn installs_into_a_prefix_and_builds_the_demo_with_pkg_config() {
    let installed = Folder::install("demo");
    let prefix = &installed.0;

    // Every file, and its mode: what a packager gets from DESTDIR.
    let mut files = Vec::new();
    let mut dirs = vec![prefix.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(prefix).unwrap().display().to_string();
                files.push((name, mode(&path)));
            }
        }
    }
    files.sort();
    let real = format!("lib/libvirevent.so.{VERSION}");
    let mut expected: Vec<(String, u32)> = [
        ("bin/virevent-watch", 0o755),
        ("include/virevent.h", 0o644),
        ("lib/libvirevent.a", 0o644),
        ("lib/libvirevent.so", 0o777),
        ("lib/libvirevent.so.0", 0o777),
        (&real, 0o755),
        ("lib/pkgconfig/virevent.pc", 0o644),
        ("lib/python3/dist-packages/virevent.py", 0o644),
        ("share/man/man1/virevent-watch.1", 0o644),
        ("share/man/man3/virevent.3", 0o644),
    ]
    .iter()
    .map(|(name, mode)| (name.to_string(), *mode))
    .collect();
    expected.sort();
    assert_eq!(files, expected, "the installed files and their modes");
    for (installed, source) in
        [("share/man/man1/virevent-watch.1", "docs/virevent-watch.1"), ("share/man/man3/virevent.3", "docs/virevent.3")]
    {
        assert!(
            std::fs::read(prefix.join(installed)).unwrap() == std::fs::read(root().join(source)).unwrap(),
            "{installed}"
        );
    }

    let lib = prefix.join("lib");
    let real = format!("libvirevent.so.{VERSION}");
    assert!(lib.join(&real).is_file(), "no {real}");
    assert_eq!(std::fs::read_link(lib.join("libvirevent.so.0")).unwrap(), Path::new(&real));
    assert_eq!(std::fs::read_link(lib.join("libvirevent.so")).unwrap(), Path::new("libvirevent.so.0"));
    assert!(lib.join("libvirevent.a").is_file());
    assert!(prefix.join("include/virevent.h").is_file());

    if !tools::needs("building against the installed library with pkg-config", &[tools::PKG_CONFIG]) {
        return;
    }
    let pkg = |args: &[&str]| {
        run(Command::new("pkg-config").args(args).arg("virevent").env("PKG_CONFIG_PATH", lib.join("pkgconfig")))
    };
    assert_eq!(pkg(&["--modversion"]).trim(), VERSION);
    // libsasl2 for static links, when the library uses it.
    let pc = std::fs::read_to_string(lib.join("pkgconfig/virevent.pc")).unwrap();
    let nm = run(Command::new("objdump").arg("-p").arg(lib.join("libvirevent.so")));
    assert_eq!(pc.contains("Requires.private: libsasl2\n"), nm.contains("libsasl2"), "{pc}");
    assert!(!pc.contains('@'), "{pc}");
    let flags = pkg(&["--cflags", "--libs"]);
    assert!(flags.contains(&format!("-I{}/include", prefix.display())), "{flags}");

    // Shared: cc demo.c $(pkg-config --cflags --libs virevent).
    let demo = prefix.join("demo");
    run(Command::new("cc").arg(root().join("examples-c/demo.c")).args(flags.split_whitespace()).arg("-o").arg(&demo));
    let out = run(Command::new(&demo).env("LD_LIBRARY_PATH", &lib));
    assert_eq!(out.matches("domain-state-transition").count(), 4, "{out}");
    validate_printed("the installed demo", &out);

    // Static: the archive and pkg-config's private libraries.
    let demo_static = prefix.join("demo-static");
    let private = pkg(&["--static", "--libs-only-l"]);
    run(Command::new("cc")
        .arg(root().join("examples-c/demo.c"))
        .args(pkg(&["--cflags"]).split_whitespace())
        .arg(lib.join("libvirevent.a"))
        .args(private.split_whitespace().filter(|l| *l != "-lvirevent"))
        .arg("-o")
        .arg(&demo_static));
    let ldd = run(Command::new("ldd").arg(&demo_static));
    assert!(!ldd.contains("libvirevent"), "{ldd}");
    let out = run(&mut Command::new(&demo_static));
    assert_eq!(out.matches("domain-state-transition").count(), 4, "{out}");
}

#[test]
fn the_installed_watcher_runs_without_the_library_path() {
    let prefix = Folder::install("watch");
    let watch = prefix.path("bin/virevent-watch");
    // A Rust program: the library is linked in from the rlib.
    let ldd = run(Command::new("ldd").arg(&watch));
    assert!(!ldd.contains("libvirevent"), "{ldd}");
    let bare = |args: &[&str]| {
        let mut command = Command::new(&watch);
        command.args(args).env_remove("LD_LIBRARY_PATH").current_dir(&prefix.0);
        run(&mut command)
    };
    assert_eq!(bare(&["--version"]), format!("virevent-watch {VERSION}\n"));
    assert!(bare(&["--help"]).contains("--version"));
    let events = bare(&["--demo", "--interval", "0.01", "--count", "2", "--format", "line"]);
    let lines: Vec<&str> = events.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].ends_with(" test running -> paused (suspended-paused)")
            && lines[1].ends_with(" test paused -> running (resumed-unpaused)"),
        "{events}"
    );
}

#[test]
fn the_installed_man_pages_render_without_warnings() {
    if !tools::needs("rendering the installed man pages", &[tools::MAN, tools::GROFF, tools::LEXGROG]) {
        return;
    }
    let prefix = Folder::install("man");
    for (page, name) in [
        ("share/man/man1/virevent-watch.1", "virevent-watch - print libvirt events as they arrive"),
        ("share/man/man3/virevent.3", "virevent - the libvirt events API"),
    ] {
        common::man::assert_renders(&prefix.path(page), page, name, VERSION);
    }
}

#[test]
fn the_installed_python_module_finds_the_installed_library() {
    if !tools::needs("importing the installed Python module", &[tools::PYTHON3]) {
        return;
    }
    let prefix = Folder::install("python");
    let pythondir = prefix.path("lib/python3/dist-packages");
    let module = std::fs::read_to_string(pythondir.join("virevent.py")).unwrap();
    let libdir = prefix.path("lib");
    let line = format!("INSTALL_LIBDIR = \"{}\"", libdir.display());
    assert_eq!(module.lines().filter(|l| l.starts_with("INSTALL_LIBDIR =")).collect::<Vec<_>>().len(), 1);
    assert!(module.lines().any(|l| l.starts_with(&line)), "the installed module has no line {line}");
    // Python prints what it loaded: the module, INSTALL_LIBDIR, the library
    // file mapped in, and the events of one suspend.
    let script = "import virevent\n\
                  got = []\n\
                  with virevent.Connection() as conn:\n\
                  \x20   conn.add_handler('domain-*', got.append)\n\
                  \x20   with conn.lookup_domain('test') as dom:\n\
                  \x20       dom.suspend()\n\
                  \x20   conn.deliver()\n\
                  maps = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'libvirevent' in l})\n\
                  print(virevent.__file__, virevent.INSTALL_LIBDIR, *maps, len(got))\n";
    let output = Command::new("python3")
        .args(["-c", script])
        .env("PYTHONPATH", &pythondir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONNOUSERSITE", "1")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("VIREVENT_LIB")
        .current_dir(&prefix.0)
        .output()
        .expect("python3 runs");
    let expected = format!(
        "{} {} {} 1\n",
        pythondir.join("virevent.py").display(),
        libdir.display(),
        libdir.join(format!("libvirevent.so.{VERSION}")).display()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "import virevent from {}: {stderr}", pythondir.display());
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected, "the module, INSTALL_LIBDIR, the library loaded");
}

/// The function names `include/virevent.h` declares, and (with
/// `variables`) its variables too (`extern TYPE NAME;`).
fn header_functions(variables: bool) -> Vec<String> {
    let header = std::fs::read_to_string(root().join("include/virevent.h")).unwrap();
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with("typedef"))
        .filter_map(|l| match l.strip_prefix("extern ") {
            Some(variable) if !variable.contains('(') => {
                variables.then(|| variable.trim_end_matches(';').split_whitespace().last().map(str::to_string)).flatten()
            }
            _ if l.contains('(') => l.split('(').next()?.split_whitespace().last().map(|n| n.trim_start_matches('*').to_string()),
            _ => None,
        })
        .filter(|n| n.starts_with("vir"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_shared_library_exports_exactly_the_header_functions() {
    let so = library_dir().join("libvirevent.so");
    let nm = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    let mut exported: Vec<String> =
        nm.lines().filter_map(|l| l.split_whitespace().nth(2)).map(str::to_string).collect();
    exported.sort();
    let declared = header_functions(true);
    assert!(declared.len() >= 20, "{declared:?}");
    assert_eq!(exported, declared, "nm -D --defined-only against the header's functions and variables");
}

/// virevent(3)'s sections: name -> text, from `.SH NAME` to the next.
fn man_sections(page: &str) -> Vec<(String, String)> {
    page.split("\n.SH ")
        .skip(1)
        .map(|s| {
            let (name, body) = s.split_once('\n').unwrap_or((s, ""));
            (name.trim_matches('"').to_string(), body.to_string())
        })
        .collect()
}

#[test]
fn the_api_man_page_documents_every_header_function() {
    let page = std::fs::read_to_string(root().join("docs/virevent.3")).unwrap();
    let sections = man_sections(&page);
    let section = |name: &str| {
        sections.iter().find(|(n, _)| n == name).map(|(_, body)| body.as_str()).unwrap_or_else(|| panic!("no {name}"))
    };
    for name in ["NAME", "LIBRARY", "SYNOPSIS", "DESCRIPTION", "FUNCTIONS", "ERRORS", "THREADS", "FORK", "SEE ALSO"] {
        section(name);
    }
    let declared = header_functions(false);
    // Each variable, in bold, in the SYNOPSIS and headed in FUNCTIONS.
    for variable in header_functions(true).into_iter().filter(|n| !declared.contains(n)) {
        assert!(section("SYNOPSIS").contains(&format!("\\fB{variable}\\fP;")), "no {variable} in the SYNOPSIS");
    }
    // SYNOPSIS: each prototype names its function in bold, then '('.
    let mut synopsis: Vec<String> = section("SYNOPSIS")
        .split("\\fB")
        .skip(1)
        .filter_map(|s| s.split_once("\\fP(").map(|(name, _)| name.to_string()))
        .collect();
    synopsis.sort();
    assert_eq!(synopsis, declared, "the functions in virevent(3)'s SYNOPSIS against include/virevent.h's");
    // FUNCTIONS: one .TP paragraph headed by each function's name, in the
    // SYNOPSIS's order.
    let lines: Vec<&str> = section("FUNCTIONS").lines().collect();
    let mut headed: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .filter_map(|w| w[1].strip_prefix(".B "))
        .map(str::to_string)
        .collect();
    let paragraphs = headed.len();
    headed.sort();
    let with_variables = header_functions(true);
    assert_eq!(headed, with_variables, "the paragraphs of virevent(3)'s FUNCTIONS against include/virevent.h's functions and variables");
    assert_eq!(paragraphs, with_variables.len());
    // Every error code of the header, with its number.
    let header = std::fs::read_to_string(root().join("include/virevent.h")).unwrap();
    let errors = section("ERRORS");
    for line in header.lines().filter_map(|l| l.trim().strip_prefix("VIR_ERR_")) {
        let (name, number) = line.trim_end_matches(',').split_once(" = ").unwrap();
        let entry = format!(".BR VIR_ERR_{name} \" ({number})\"");
        assert!(errors.contains(&entry), "virevent(3)'s ERRORS has no {entry}");
    }
    let th = page.lines().find(|l| l.starts_with(".TH ")).expect(".TH");
    assert!(th.contains(&format!("\"virevent {VERSION}\"")), "{th}");
}

#[test]
fn the_readme_c_example_builds_and_runs_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split("\n## In C\n").nth(1).expect("an In C section").split("\n## ").next().unwrap();
    let program = section.split("```c\n").nth(1).and_then(|s| s.split("```").next()).expect("a C block");
    let build = section
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("cc demo.c "))
        .map(|l| format!("cc demo.c {l}"))
        .expect("a `cc demo.c ...` line");
    assert_eq!(build, "cc demo.c -Iinclude -Ltarget/release -lvirevent -Wl,-rpath,$PWD/target/release");
    // The top of a repository where `make -C examples-c lib` has run: the
    // header, the library and its soname link.
    let top = std::env::temp_dir().join(format!("virevent-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    let top = Folder(top);
    let release = top.path("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(root().join("include"), top.path("include")).unwrap();
    std::fs::copy(library_dir().join("libvirevent.so"), release.join("libvirevent.so")).unwrap();
    std::os::unix::fs::symlink("libvirevent.so", release.join("libvirevent.so.0")).unwrap();
    std::fs::write(top.path("demo.c"), program).unwrap();
    run(Command::new("sh").args(["-c", &build]).current_dir(&top.0).env("PWD", &top.0));
    let out = run(Command::new(top.path("a.out")).env_remove("LD_LIBRARY_PATH").current_dir("/"));
    assert_eq!(out.matches("<event type=\"domain-state-transition\"").count(), 1, "{out}");
    assert!(out.contains("<reason>suspended-paused</reason>"), "{out}");
    validate_printed("the README's C example", &out);
}

/// Validates the events a program printed, one per line (after a prefix such
/// as the demo's `event 1: `), against docs/events.rng.
fn validate_printed(what: &str, out: &str) {
    let events: Vec<&str> = out.lines().filter_map(|line| line.find("<event ").map(|at| &line[at..])).collect();
    assert!(!events.is_empty(), "{what} printed no event: {out}");
    common::schema::validate(what, &events);
}
