//! The README is part of the product: every flag is documented there, and
//! its quick-start command works.

use clap::CommandFactory;

use crate::support::{repo_root, resetd, run};

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).unwrap()
}

#[test]
fn every_flag_and_subcommand_is_documented() {
    let readme = readme();
    let root = resetd::cli::Cli::command();
    let mut missing = Vec::new();
    for sub in root.get_subcommands() {
        if !readme.contains(&format!("`{}", sub.get_name())) {
            missing.push(sub.get_name().to_owned());
        }
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long()
                && !readme.contains(&format!("--{long}"))
            {
                missing.push(format!("{} --{long}", sub.get_name()));
            }
        }
    }
    for var in [
        "IPROYAL_API_TOKEN",
        "RESETD_API_BASE",
        "RESETD_LOG",
        "RESETD_LOG_FORMAT",
    ] {
        if !readme.contains(var) {
            missing.push(var.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "not documented in README.md: {missing:?}"
    );
}

#[test]
fn help_and_readme_give_the_same_exit_codes() {
    let readme = readme();
    let (code, help, _) = run(resetd().arg("--help"));
    assert_eq!(code, 0);
    for (exit, words) in [
        ("130", "SIGINT"),
        ("143", "SIGTERM"),
        ("2", "unwritable status"),
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(exit)) && help.contains(words),
            "--help lacks exit {exit} ({words}):\n{help}"
        );
        assert!(
            readme.contains(&format!("**{exit}**")),
            "README lacks exit {exit}"
        );
    }
}

/// The shell commands of the first ```sh block after `heading`.
fn commands_after(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README lacks {heading:?}"));
    let block = readme[start..]
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block.lines().map(str::to_owned).collect()
}

#[test]
fn the_quick_start_commands_work() {
    let readme = readme();
    let main_job = commands_after(&readme, "Run the main job on the bundled example");
    assert_eq!(main_job.len(), 1);
    let args: Vec<&str> = main_job[0]
        .strip_prefix("cargo run --locked -- ")
        .expect("the main job runs through cargo")
        .split_whitespace()
        .collect();
    // Run it on a copy so the test leaves the source tree alone; `target/`
    // is there, as `cargo run` leaves it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("examples")).unwrap();
    std::fs::create_dir(dir.path().join("target")).unwrap();
    std::fs::copy(
        repo_root().join("examples/resets.yaml"),
        dir.path().join("examples/resets.yaml"),
    )
    .unwrap();
    let (code, stdout, stderr) = run(resetd().args(&args).current_dir(dir.path()));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("DRY-RUN"), "{stdout}");
    // A newcomer's first run shows no aged entry and no warning.
    assert!(!stdout.contains("EXPIRE"), "{stdout}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(dir.path().join("target/resets.status.yaml").exists());
    // Nothing beside the config: `examples/` keeps configs only.
    let beside: Vec<_> = std::fs::read_dir(dir.path().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["resets.yaml"], "{beside:?}");

    let tests = commands_after(&readme, "Run the tests");
    assert_eq!(tests, ["cargo test --locked"]);
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "cargo test --locked"),
        ".ci/run must run the README's test command"
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, _) = run(resetd().args(["completions", shell]));
        assert_eq!(code, 0);
        // fish spells flags `-l dry-run`; bash and zsh `--dry-run`.
        assert!(
            stdout.contains("validate") && stdout.contains("dry-run"),
            "{shell}"
        );
    }
}

#[test]
fn version_works_on_every_command() {
    for sub in ["validate", "plan", "run", "status", "schema", "completions"] {
        let (code, stdout, stderr) =
            crate::support::run(crate::support::resetd().args([sub, "--version"]));
        assert_eq!(code, 0, "{sub}: {stderr}");
        assert!(
            stdout.contains(env!("CARGO_PKG_VERSION")),
            "{sub}: {stdout}"
        );
    }
}

#[test]
fn the_mock_round_trip_works_as_written() {
    let readme = readme();
    let lines = commands_after(
        &readme,
        "A full local round trip against the bundled mock API",
    );
    assert!(
        lines[0].starts_with("cargo run --example mock_api &"),
        "{lines:?}"
    );
    // The mock's own account, on an ephemeral port instead of 8089.
    let api = crate::fake_api::FakeApi::start();
    let (users, own) = crate::fake_api::demo_account();
    api.subusers(users).own_hash(own);
    // The examples, copied so the source tree is left alone.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    // As `cargo run` leaves it.
    std::fs::create_dir(dir.path().join("target")).unwrap();
    for name in ["minimal.yaml", "subusers.yaml"] {
        std::fs::copy(
            repo_root().join("examples").join(name),
            dir.path().join("examples").join(name),
        )
        .unwrap();
    }
    let mut outputs = String::new();
    for line in lines.iter().filter(|l| l.starts_with("cargo run -- ")) {
        let command = line.split(" #").next().unwrap();
        let args: Vec<&str> = command["cargo run -- ".len()..]
            .split_whitespace()
            .collect();
        let mut cmd = resetd();
        cmd.env("IPROYAL_API_TOKEN", "test-token")
            .env("RESETD_API_BASE", api.base())
            .current_dir(dir.path())
            .args(&args);
        let (code, stdout, stderr) = run(&mut cmd);
        assert_eq!(code, 0, "{line}:\n{stdout}{stderr}");
        outputs.push_str(&stdout);
    }
    assert!(outputs.contains("users: [scraper-eu-07]"), "{outputs}");
    assert!(
        outputs.contains("01JY9XKHHPZ984254W236K94PC  checkout-payments"),
        "{outputs}"
    );
    assert!(!outputs.contains(crate::fake_api::SUBUSER_PASSWORD));
    let deletes: Vec<Vec<String>> = api.deletes();
    assert_eq!(
        deletes.last().unwrap(),
        &[
            "01HQ5K3P97DY8EX9Y90YT1K6XA",
            "01H7YCG0R9GYY1YCPS2S4QA6WB",
            "01JY9XKHHPZ984254W236K94PC"
        ],
        "the sub-users' hashes, then the entry's own"
    );
}

/// The anchors GitHub gives the README's headings (outside code blocks):
/// lower case, punctuation dropped, spaces as hyphens.
pub(crate) fn anchors() -> std::collections::BTreeSet<String> {
    let mut in_code = false;
    let mut anchors = std::collections::BTreeSet::new();
    for line in readme().lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            let text = line.trim_start_matches('#').trim().to_lowercase();
            let anchor: String = text
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect();
            anchors.insert(anchor);
        }
    }
    anchors
}

#[test]
fn the_readme_links_only_inside_the_repository_and_every_link_resolves() {
    let readme = readme();
    let anchors = anchors();
    let mut broken = Vec::new();
    for piece in readme.split("](").skip(1) {
        let target = piece.split(')').next().unwrap();
        let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
        let resolves = if path.is_empty() {
            anchors.contains(anchor)
        } else {
            !path.contains("://") && repo_root().join(path).exists()
        };
        if !resolves {
            broken.push(target.to_owned());
        }
    }
    assert!(
        broken.is_empty(),
        "README links that do not resolve in the repository: {broken:?}"
    );
    assert!(
        readme.matches("](").count() >= 10,
        "the README's links were not found"
    );
}

/// A copy of the repository as a newcomer's clone has it: the files git
/// would give them (tracked, or new and not ignored), committed in a fresh
/// repository so `git status` shows what the walkthroughs leave behind.
fn fresh_clone() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let listed = crate::support::git(
        repo_root(),
        &["ls-files", "--cached", "--others", "--exclude-standard"],
    );
    for name in listed.lines() {
        let from = repo_root().join(name);
        // A file deleted in the work tree but not yet in the index.
        if !from.is_file() {
            continue;
        }
        let to = dir.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    crate::support::git(dir.path(), &["init", "-q"]);
    crate::support::git(dir.path(), &["add", "-A"]);
    crate::support::git(dir.path(), &["commit", "-q", "-m", "clone"]);
    dir
}

#[test]
fn the_walkthroughs_as_written_leave_a_clean_checkout_and_valid_examples() {
    let readme = readme();
    let clone = fresh_clone();
    let mut commands = commands_after(&readme, "Run the main job on the bundled example");
    // The mock round trip, against the fake API in the mock's place.
    let round_trip = commands_after(
        &readme,
        "A full local round trip against the bundled mock API",
    );
    commands.extend(
        round_trip
            .iter()
            .filter(|l| l.starts_with("cargo run -- "))
            .cloned(),
    );
    assert!(commands.len() >= 5, "{commands:?}");
    let api = crate::fake_api::FakeApi::start();
    let (users, own) = crate::fake_api::demo_account();
    api.subusers(users).own_hash(own);
    // `cargo run` builds into target/ before it runs anything.
    std::fs::create_dir(clone.path().join("target")).unwrap();
    for line in &commands {
        let command = line.split(" #").next().unwrap();
        let args = command
            .strip_prefix("cargo run --locked -- ")
            .or_else(|| command.strip_prefix("cargo run -- "))
            .unwrap_or_else(|| panic!("not a resetd command: {line}"));
        let (code, stdout, stderr) = run(resetd()
            .env("IPROYAL_API_TOKEN", "test-token")
            .env("RESETD_API_BASE", api.base())
            .current_dir(clone.path())
            .args(args.split_whitespace()));
        assert_eq!(code, 0, "{line}:\n{stdout}{stderr}");
    }
    let left = crate::support::git(
        clone.path(),
        &["status", "--porcelain", "--untracked-files=all"],
    );
    assert!(
        left.is_empty(),
        "the walkthroughs left files git shows:\n{left}"
    );
    // The shell expands the glob.
    let validate = || {
        run(std::process::Command::new("sh")
            .args(["-c", "\"$RESETD\" validate examples/*.yaml"])
            .env("RESETD", env!("CARGO_BIN_EXE_resetd"))
            .current_dir(clone.path()))
    };
    let (code, stdout, stderr) = validate();
    assert_eq!(code, 0, "validate examples/*.yaml:\n{stdout}{stderr}");

    // "Running resets", as written, beside the bundled example: its status,
    // journal and lock land beside the config, and git ignores them all.
    let running = commands_after(&readme, "## Running resets");
    assert_eq!(running.len(), 4, "{running:?}");
    for line in &running {
        let args = line
            .split(" #")
            .next()
            .unwrap()
            .strip_prefix("resetd ")
            .unwrap();
        let (code, stdout, stderr) = run(resetd()
            .env("IPROYAL_API_TOKEN", "test-token")
            .env("RESETD_API_BASE", api.base())
            .current_dir(clone.path().join("examples"))
            .args(args.split_whitespace()));
        assert_eq!(code, 0, "{line}:\n{stdout}{stderr}");
    }
    assert!(
        clone
            .path()
            .join("examples/resets.status.yaml.journal")
            .exists()
    );
    let left = crate::support::git(
        clone.path(),
        &["status", "--porcelain", "--untracked-files=all"],
    );
    assert!(left.is_empty(), "a run beside its config left:\n{left}");
    // And validate says, in one error, that the status file is none.
    let (code, stdout, _) = validate();
    assert_eq!(code, 1, "{stdout}");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    assert!(errors[0].contains("a resetd status file"), "{stdout}");
}
