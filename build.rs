//! Records the git revision the binary was built from, for `--version` and
//! `fanout_exporter_build_info{revision}`. A container build has no `.git` in its context, so the
//! `FANOUT_BUILD_REVISION` environment variable (the Dockerfile's build argument) comes first; builds
//! with neither say `unknown`.
use std::process::Command;

fn main() {
    let given = std::env::var("FANOUT_BUILD_REVISION")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s != "unknown");
    let revision = given
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=FANOUT_BUILD_REVISION={revision}");
    println!("cargo:rerun-if-env-changed=FANOUT_BUILD_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
