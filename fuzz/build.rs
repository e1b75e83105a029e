//! The `qiao` rlib links libpython (pyo3 without `extension-module`, as
//! `cargo test` does). pyo3's build script adds the link search path; this
//! adds the same directory as an rpath so the fuzz binaries start without
//! `LD_LIBRARY_PATH`. The interpreter is `$PYO3_PYTHON`, else `python3`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')",
        ])
        .output();
    if let Ok(out) = out {
        let libdir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !libdir.is_empty() {
            println!("cargo:rustc-link-search=native={libdir}");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
        }
    }
}
