//! The README's two-terminal walkthrough, run as written: the shell lines between the
//! `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->` markers are taken from the
//! README itself. `courier serve` starts a real server (on a free port, in a temporary
//! directory, so its `./courier-data` is there); every other `courier` line runs against it
//! with `COURIER_URL` pointing at it and must succeed; each `#>` line after a command names
//! words its output must contain in one line, in order and adjacent (column padding aside).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_courier");
const README: &str = include_str!("../../README.md");

/// One step of the walkthrough.
#[derive(Debug, PartialEq)]
struct Step {
    /// The arguments after `courier`.
    args: Vec<String>,
    /// Expected output lines, each as its words.
    expect: Vec<Vec<String>>,
}

/// Splits a shell line into words: whitespace separates, '…' and "…" quote, and a word
/// starting with `#` outside quotes starts a comment.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '#') if !in_word => break,
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in {line:?}");
    if in_word {
        words.push(word);
    }
    words
}

/// The walkthrough's steps: the `courier` lines inside code fences between the markers.
fn steps(readme: &str) -> Vec<Step> {
    let begin = readme
        .find("<!-- walkthrough:begin -->")
        .expect("the README has a walkthrough:begin marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("the README has a walkthrough:end marker");
    let mut steps: Vec<Step> = Vec::new();
    let mut in_code = false;
    for line in readme[begin..end].lines() {
        let line = line.trim();
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        if let Some(expected) = line.strip_prefix("#>") {
            let step = steps.last_mut().expect("a #> line follows a command");
            step.expect
                .push(expected.split_whitespace().map(str::to_owned).collect());
            continue;
        }
        let mut w = words(line);
        if w.first().map(String::as_str) == Some("courier") {
            w.remove(0);
            steps.push(Step {
                args: w,
                expect: Vec::new(),
            });
        }
    }
    steps
}

/// True when `expected` words appear adjacent and in order in one line of `output`, runs of
/// whitespace counting as one space, and not cut out of a longer word or number (`2` is not
/// found in `20`; `"body":"x"` is found in `{"body":"x",…}`).
fn contains_words(output: &str, expected: &[String]) -> bool {
    let wanted = expected.join(" ");
    output.lines().any(|line| {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        line.match_indices(&wanted).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + wanted.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

/// Starts `courier serve ARGS` in `dir` on a free port; returns it and its address.
fn serve(args: &[String], dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

/// Stops the server with SIGTERM; it must exit 0.
fn stop(mut child: Child) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success(), "serve did not exit 0");
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let steps = steps(README);
    let (serve_step, rest) = steps.split_first().expect("the walkthrough has steps");
    assert_eq!(
        serve_step.args.first().map(String::as_str),
        Some("serve"),
        "it starts with courier serve"
    );
    for needed in ["send", "receive", "browse", "stats"] {
        assert!(
            rest.iter().any(|s| s.args[0] == needed),
            "the walkthrough runs {needed}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = serve(&serve_step.args, dir.path());
    let url = format!("courier://{addr}");
    for step in rest {
        let mut command = assert_cmd::Command::new(BIN);
        let output = command
            .args(&step.args)
            .env("COURIER_URL", &url)
            .current_dir(dir.path())
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "courier {}: {stderr}",
            step.args.join(" ")
        );
        for expected in &step.expect {
            assert!(
                contains_words(&stdout, expected),
                "courier {}: output lacks {:?}:\n{stdout}",
                step.args.join(" "),
                expected.join(" ")
            );
        }
    }
    stop(server);
}

#[test]
fn the_extraction_reads_quotes_comments_and_expectations() {
    assert_eq!(
        words(r#"courier receive --selector "region = 'eu'" 'a b'  # comment"#),
        ["courier", "receive", "--selector", "region = 'eu'", "a b"]
    );
    let readme = "x\n<!-- walkthrough:begin -->\n```sh\ncourier serve\nalias x=y\n\
                  courier stats # c\n#> queue  q 2\n```\nprose courier no\n<!-- walkthrough:end -->\n";
    assert_eq!(
        steps(readme),
        [
            Step {
                args: vec!["serve".into()],
                expect: vec![]
            },
            Step {
                args: vec!["stats".into()],
                expect: vec![vec!["queue".into(), "q".into(), "2".into()]]
            },
        ]
    );
    assert!(contains_words(
        "a  queue   q 2  x\n",
        &["queue".into(), "q".into(), "2".into()]
    ));
    assert!(!contains_words(
        "queue q 20\n",
        &["queue".into(), "q".into(), "2".into()]
    ));
    assert!(!contains_words(
        "queue q\n2\n",
        &["queue".into(), "q".into(), "2".into()]
    ));
    assert!(contains_words(
        "{\"body\":\"a b\",\"x\":1}",
        &["\"body\":\"a".into(), "b\"".into()]
    ));
}
