//! `courier user add|remove|list`: the users of a configuration file. Passwords are read
//! from stdin (one line) and stored only as argon2id hashes.

use clap::{Args, Subcommand};
use courier_broker::User;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{permissions, ConfigFile, RuleEntry, UserEntry};

/// Options of `courier user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// The configuration file to edit [default: courier.toml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Adds a user (or replaces its password and rules); the password is read from stdin.
    Add {
        /// The user name.
        name: String,
        /// A permission rule `PATTERN=PERM[,PERM…]` (send, receive, browse, admin, all);
        /// repeatable. Without any the user may do nothing.
        #[arg(long = "allow")]
        allow: Vec<String>,
    },
    /// Removes a user.
    Remove {
        /// The user name.
        name: String,
    },
    /// Lists the users and their rules.
    List,
}

/// Runs the subcommand.
pub fn run(args: UserArgs) -> ExitCode {
    let path = args.config.unwrap_or_else(|| PathBuf::from("courier.toml"));
    match execute(&path, args.action) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("courier user: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(path: &std::path::Path, action: Action) -> Result<(), String> {
    match action {
        Action::List => {
            let file = ConfigFile::load(path, true)?;
            for user in &file.users {
                let rules: Vec<String> = user
                    .allow
                    .iter()
                    .map(|r| format!("{}={}", r.pattern, r.permissions.join(",")))
                    .collect();
                println!("{}\t{}", user.name, rules.join(" "));
            }
            Ok(())
        }
        Action::Remove { name } => {
            let mut file = ConfigFile::load(path, false)?;
            let before = file.users.len();
            file.users.retain(|u| u.name != name);
            if file.users.len() == before {
                return Err(format!("no user {name:?} in {}", path.display()));
            }
            file.save(path)
        }
        Action::Add { name, allow } => {
            let mut file = ConfigFile::load(path, true)?;
            let rules = allow
                .iter()
                .map(|rule| {
                    let (pattern, perms) = rule
                        .split_once('=')
                        .ok_or_else(|| format!("--allow {rule:?}: expected PATTERN=PERMS"))?;
                    let perms: Vec<String> = perms.split(',').map(str::to_owned).collect();
                    permissions(&perms)?;
                    Ok(RuleEntry {
                        pattern: pattern.to_owned(),
                        permissions: perms,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("an empty password (give it on stdin)".into());
            }
            let user = User::with_password(name.as_str(), password).map_err(|e| e.to_string())?;
            file.users.retain(|u| u.name != name);
            file.users.push(UserEntry {
                name,
                password_hash: user.password_hash().to_owned(),
                allow: rules,
            });
            file.save(path)
        }
    }
}
