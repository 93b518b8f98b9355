//! The `stellar` binary.

use std::io::BufRead;
use std::process::ExitCode;

use app::types::{NewTenant, NewUser, Role};
use clap::Parser;
use stellar::cli::{AdminCommand, Cli, Command, DbArgs, LogFormat};
use stellar::config::Config;
use stellar::db::Db;
use stellar::domain::Password;
use stellar::services::accounts::{Accounts, AuthSettings};
use stellar::services::ledger::Ledger;
use stellar::services::throttle::Limits;
use stellar::startup::{Application, shutdown_signal};
use stellar::trust_cli::cli_actor;
use stellar::{secrets, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Policy commands are offline and synchronous.
    let cli = match cli.command {
        Command::Policy(cmd) => return stellar::policy_cli::run(cmd),
        Command::Verify(args) => return report(stellar::trust_cli::verify(args)),
        Command::Sign(args) => return report(stellar::trust_cli::sign(args)),
        Command::Plugin(cmd) => return stellar::plugin_cli::run_plugin(cmd),
        Command::Submit(args) => return stellar::plugin_cli::run_submit(args),
        other => Cli { command: other },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn report(outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let config = Config::from_args(*args).map_err(|e| e.to_string())?;
            telemetry::init_logging(config.log_format, &config.log)?;
            let app = Application::build(config)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(addr = %app.local_addr(), "listening on http://{}", app.local_addr());
            app.run_until(shutdown_signal())
                .await
                .map_err(|e| format!("the server stopped with an error: {e}"))
        }
        Command::Migrate(db) => {
            telemetry::init_logging(LogFormat::Human, "warn")?;
            let db = open(&db).await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin(cmd) => {
            telemetry::init_logging(LogFormat::Human, "warn")?;
            admin(cmd).await
        }
        Command::Policy(cmd) => match stellar::policy_cli::run(cmd) {
            code if code == ExitCode::SUCCESS => Ok(()),
            _ => Err("the policy command failed".into()),
        },
        Command::Verify(args) => stellar::trust_cli::verify(args),
        Command::Sign(args) => stellar::trust_cli::sign(args),
        Command::Key(cmd) => {
            telemetry::init_logging(LogFormat::Human, "warn")?;
            stellar::trust_cli::key(cmd).await
        }
        Command::Attest(args) => {
            telemetry::init_logging(LogFormat::Human, "warn")?;
            stellar::trust_cli::attest(args).await
        }
        Command::SignRequest(cmd) => {
            telemetry::init_logging(LogFormat::Human, "warn")?;
            stellar::trust_cli::sign_request(cmd).await
        }
        Command::Ledger(cmd) => {
            telemetry::init_logging(LogFormat::Human, "warn")?;
            stellar::trust_cli::ledger(cmd).await
        }
        // Dispatched in `main`, before this runtime starts (they run their own).
        Command::Plugin(_) | Command::Submit(_) => {
            Err("this command runs outside the server runtime".into())
        }
    }
}

async fn open(args: &DbArgs) -> Result<Db, String> {
    let db = Db::connect(&args.database_url)
        .await
        .map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    Ok(db)
}

fn accounts(db: &Db) -> Accounts {
    // Admin commands append to the ledger but never sign checkpoints, so the origin is unused.
    let ledger = Ledger::new(db.conn.clone(), "stellar.local/ledger");
    Accounts::new(
        db.conn.clone(),
        AuthSettings {
            session_ttl: std::time::Duration::from_secs(3600),
            session_idle: std::time::Duration::from_secs(3600),
            throttle: Limits {
                max_failures: 5,
                lockout: std::time::Duration::from_secs(60),
            },
        },
        ledger,
    )
}

async fn admin(cmd: AdminCommand) -> Result<(), String> {
    match cmd {
        AdminCommand::CreateTenant { db, slug, name } => {
            let db = open(&db).await?;
            let t = accounts(&db)
                .create_tenant_unchecked(NewTenant { slug, name }, &cli_actor())
                .await
                .map_err(|e| e.to_string())?;
            db.close().await;
            println!("created tenant {} ({})", t.slug, t.name);
            Ok(())
        }
        AdminCommand::CreateUser {
            db,
            username,
            role,
            tenant,
            display_name,
            password_stdin,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: app::types::UnknownRole| e.to_string())?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (secrets::random_secret(18), true)
            };
            let password = Password::parse(&password).map_err(|e| e.to_string())?;
            let db = open(&db).await?;
            let input = NewUser {
                username,
                display_name: display_name.unwrap_or_default(),
                role,
                tenant,
                password: String::new(),
            };
            let u = accounts(&db)
                .create_user_unchecked(input, password.clone(), &cli_actor())
                .await
                .map_err(|e| e.to_string())?;
            db.close().await;
            println!("created user {} ({})", u.username, u.role);
            if generated {
                println!("password: {}", password.expose());
                println!("(shown once: store it now)");
            }
            Ok(())
        }
        AdminCommand::CreateToken {
            db,
            user,
            name,
            expires_in_days,
        } => {
            let db = open(&db).await?;
            let created = accounts(&db)
                .create_token_unchecked(&user, &name, expires_in_days, &cli_actor())
                .await
                .map_err(|e| e.to_string())?;
            db.close().await;
            // The token alone on standard output, so that scripts can capture it.
            println!("{}", created.secret);
            eprintln!(
                "token `{}` for {} created (id {}); it is shown once",
                created.token.name, created.token.user, created.token.id
            );
            Ok(())
        }
    }
}
