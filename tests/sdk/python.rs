//! The Python that runs Microsoft's SDK: `ENTRA_SDK_PYTHON` if set (an
//! interpreter that already has `requirements.txt` installed), else a venv
//! made once under the target dir, named by the hash of `requirements.txt`
//! so a changed pin makes a new one. Provisioning that fails is a failed
//! test; only outside CI, and only when pip cannot reach the package index,
//! the test says so and skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The interpreter to run the script with, or `None` to skip (outside CI,
/// package index unreachable; the reason was printed).
pub fn interpreter() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("ENTRA_SDK_PYTHON") {
        return Some(PathBuf::from(given));
    }
    let requirements = here().join("requirements.txt");
    let pins = std::fs::read(&requirements).expect("read tests/sdk/requirements.txt");
    let hash = hex::encode(&Sha256::digest(&pins)[..6]);
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sdk-venv-{hash}"));
    let python = venv.join("bin").join("python");
    let ready = venv.join(".installed");
    if ready.is_file() && python.is_file() {
        return Some(python);
    }
    // A venv left half-made by an interrupted run is made again from scratch.
    let _ = std::fs::remove_dir_all(&venv);
    let base = std::env::var("ENTRA_SDK_BASE_PYTHON").unwrap_or_else(|_| "python3".into());
    let made = run(Command::new(&base).args(["-m", "venv"]).arg(&venv));
    if !made.status.success() {
        fail(&format!("`{base} -m venv` failed (is python3 with venv installed? On Debian: apt-get install python3-venv)"), &made);
    }
    let pip = run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(["--quiet", "--timeout", "30", "-r"])
        .arg(&requirements));
    if !pip.status.success() {
        let out = text(&pip);
        let offline = OFFLINE_SIGNS.iter().any(|s| out.contains(s));
        if offline && std::env::var_os("CI").is_none() {
            eprintln!("SKIPPED the Microsoft SDK test: pip cannot reach the package index to install tests/sdk/requirements.txt (set ENTRA_SDK_PYTHON to an interpreter that has them).\n{out}");
            return None;
        }
        fail("pip could not install tests/sdk/requirements.txt", &pip);
    }
    std::fs::write(&ready, &pins).expect("mark the venv as installed");
    Some(python)
}

/// What pip prints when it never reached the index (as opposed to a pin
/// that does not resolve, which is a failure wherever it happens).
const OFFLINE_SIGNS: &[&str] = &[
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
];

/// The folder holding the script and its pins.
pub fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sdk")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn fail(what: &str, out: &Output) -> ! {
    panic!(
        "{what} ({}); the Microsoft SDK test cannot run.\n{}",
        out.status,
        text(out)
    )
}
