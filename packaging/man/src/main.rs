//! Writes `vaultd.1` into the directory given as the only argument, from
//! the same clap definition vaultd parses its flags with, as `vaultctl man`
//! does for vaultctl. Run by `packaging/build-deb.sh`; never installed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: vaultd-man DIR");
        return ExitCode::from(2);
    };
    let cmd = <vaultd::Args as clap::CommandFactory>::command();
    match std::fs::create_dir_all(&dir).and_then(|()| clap_mangen::generate_to(cmd, &dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaultd-man: cannot write {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
