//! The command line itself: help with examples, completions, man pages.

use harness::bin;
use harness::daemon::run;
use std::process::Command;

fn vaultctl(args: &[&str]) -> harness::Out {
    run(Command::new(bin("vaultctl")).args(args), None)
}

#[test]
fn every_subcommand_help_shows_an_example() {
    let top = vaultctl(&["--help"]).ok();
    assert!(top.text().contains("Examples:"));
    let subs = [
        "status",
        "init",
        "unlock",
        "lock",
        "passwd",
        "add",
        "rotate",
        "remove",
        "list",
        "keyfile",
        "request",
        "completions",
    ];
    for sub in subs {
        let out = vaultctl(&[sub, "--help"]).ok();
        assert!(
            out.text().contains("Example"),
            "{sub} --help has no example:\n{}",
            out.text()
        );
    }
    let out = vaultctl(&["keyfile", "create", "--help"]).ok();
    assert!(out.text().contains("Example"));
}

#[test]
fn completions_for_bash_zsh_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = vaultctl(&["completions", shell]).ok();
        assert!(out.stdout.len() > 500, "{shell}: {}", out.text());
        assert!(
            out.text().contains("request"),
            "{shell} completion lacks subcommands"
        );
    }
    vaultctl(&["completions", "tcsh"]).code(1);
}

#[test]
fn man_pages_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    vaultctl(&["man", dir.path().to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(dir.path().join("vaultctl.1")).unwrap();
    assert!(page.contains(".TH vaultctl"), "{page}");
    assert!(dir.path().join("vaultctl-request.1").exists());
}
